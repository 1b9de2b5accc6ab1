package acquireapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/testclock"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// acquireWrites are the writes the acquire function's IAM role allows (infra: TableGrants):
// PutItem and UpdateItem on bucket and lease partitions, alone or in a transaction.
var acquireWrites = ddbtest.Partitions{
	"dynamodb:PutItem":    {"B#*", "LEASE#*"},
	"dynamodb:UpdateItem": {"B#*", "LEASE#*"},
}

// env is the acquire function on a fresh table, with a settable clock, a meter, fault injection
// and the IAM guard; seed is a limiter with full rights on the same table (the admin side).
type env struct {
	t       *testing.T
	clock   *testclock.Clock
	meter   *ddbtest.Meter
	faults  *ddbtest.Faults
	guard   *ddbtest.Guard
	client  *dynamodb.Client
	table   string
	lim     *limiter.Limiter
	handler lambda.Handler
	seed    *limiter.Limiter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)),
		meter: ddbtest.NewMeter(), faults: &ddbtest.Faults{}, guard: ddbtest.NewGuard(acquireWrites)}
	admin := ddbtest.Client(t)
	e.table = ddbtest.NewTable(t, admin).Name()
	e.seed = limiter.New(admin, e.table, limiter.WithClock(e.clock.Now))
	e.client = ddbtest.Client(t, e.guard.Option(), e.meter.Option(), e.faults.Option(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	e.lim, e.handler = e.newFunction()
	t.Cleanup(func() {
		if v := e.guard.Violations(); len(v) > 0 {
			t.Errorf("the acquire function wrote outside its partitions: %v", v)
		}
	})
	return e
}

// newFunction returns another instance of the acquire function on the same table and clock
// (another Lambda execution environment).
func (e *env) newFunction() (*limiter.Limiter, lambda.Handler) {
	quiet := slog.New(slog.DiscardHandler)
	lim := limiter.New(e.client, e.table, limiter.WithClock(e.clock.Now), limiter.WithLogger(quiet))
	return lim, lambda.NewHandler(acquireapi.New(lim, quiet))
}

// readEvent reads a sample event of events/acquire.
func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "acquire", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleLease is the lease id the sample lease events name.
const sampleLease = "4f6c1f0e9b2d4a7c8e5f3a1b2c3d4e5f"

// event returns a sample API Gateway event with edit applied.
func event(t *testing.T, name string, edit func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&ev)
	}
	return ev
}

// withLease points a sample lease event at lease id.
func withLease(id string) func(*events.APIGatewayV2HTTPRequest) {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RawPath = strings.Replace(ev.RawPath, sampleLease, id, 1)
		ev.RequestContext.HTTP.Path = ev.RawPath
		ev.PathParameters["lease_id"] = id
	}
}

// withBody replaces a sample event's body.
func withBody(body string) func(*events.APIGatewayV2HTTPRequest) {
	return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = body }
}

// call invokes h with ev as Lambda would (JSON in, JSON out).
func call(t *testing.T, h lambda.Handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	if resp.Headers["content-type"] != "application/json" && resp.StatusCode != 204 {
		t.Errorf("content-type %q", resp.Headers["content-type"])
	}
	return resp
}

// direct invokes h with a direct payload.
func direct(t *testing.T, h lambda.Handler, payload []byte) httpapi.DirectResponse {
	t.Helper()
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp httpapi.DirectResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Status == 0 {
		t.Fatalf("answer %s: %v", out, err)
	}
	return resp
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return v
}

// sampleLimits are the limits of the sample acquire event.
var sampleLimits = []limiter.Limit{limiter.PerMinute("rpm", 100), limiter.PerMinute("tpm", 10000)}

// available reads what is left for the sample entity and resource, through the full-rights
// limiter.
func (e *env) available(entity string) map[string]int64 {
	e.t.Helper()
	got, err := e.seed.Available(context.Background(), limiter.AvailableRequest{EntityID: entity, Resource: "gpt-4", Limits: sampleLimits})
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// writes counts the write requests the meter saw.
func (e *env) writes() int {
	n := 0
	for op, u := range e.meter.Snapshot() {
		switch op {
		case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
			n += u.Requests
		}
	}
	return n
}
