package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/testclock"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type env struct {
	lim    *limiter.Limiter
	clock  *testclock.Clock
	client *dynamodb.Client
	table  string
	meter  *ddbtest.Meter
	faults *ddbtest.Faults
}

// newEnv returns a limiter on a fresh table with a settable clock, a meter and fault injection.
func newEnv(t *testing.T, opts ...limiter.Option) *env {
	t.Helper()
	e := &env{clock: testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)), meter: ddbtest.NewMeter(), faults: &ddbtest.Faults{}}
	e.client = ddbtest.Client(t, e.meter.Option(), e.faults.Option(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	e.table = ddbtest.NewTable(t, e.client).Name()
	e.lim = e.newLimiter(opts...)
	return e
}

// newLimiter returns another limiter on the same table and clock (another Lambda instance).
func (e *env) newLimiter(opts ...limiter.Option) *limiter.Limiter {
	return limiter.New(e.client, e.table, append([]limiter.Option{limiter.WithClock(e.clock.Now)}, opts...)...)
}

func ctx() context.Context { return context.Background() }

func available(t *testing.T, e *env, entity, resource string, limits ...limiter.Limit) map[string]int64 {
	t.Helper()
	av, err := e.lim.Available(ctx(), limiter.AvailableRequest{EntityID: entity, Resource: resource, Limits: limits})
	if err != nil {
		t.Fatalf("Available: %v", err)
	}
	return av
}

func mustAcquire(t *testing.T, lim *limiter.Limiter, req limiter.AcquireRequest) *limiter.Lease {
	t.Helper()
	lease, err := lim.Acquire(ctx(), req)
	if err != nil {
		t.Fatalf("Acquire(%+v): %v", req.Consume, err)
	}
	return lease
}
