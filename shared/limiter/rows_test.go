package limiter_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// Regression tests of the table of issue 8, one per row not covered in faults_test.go.

// Row 6: a limit change applies at once, refused or not. A drained 10/day limit raised to
// 1000/min refuses for 60 ms, not for the 8,640 s the old rate would take.
func TestRow6LimitChangeAppliesWhenRefused(t *testing.T) {
	e := newEnv(t)
	old, raised := limiter.PerDay("q", 10), limiter.PerMinute("q", 1000)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{old}, Consume: map[string]int64{"q": 10}}
	mustAcquire(t, e.lim, req)
	req.Limits, req.Consume = []limiter.Limit{raised}, map[string]int64{"q": 1}
	other := e.newLimiter() // another instance, which never saw the bucket
	var rle *limiter.RateLimitExceededError
	if _, err := other.Acquire(ctx(), req); !errors.As(err, &rle) || rle.RetryAfter != 60*time.Millisecond {
		t.Fatalf("first acquire under the raised limit: %v, want a refusal for 60ms", err)
	}
	e.clock.Advance(60 * time.Millisecond)
	if _, err := e.lim.Acquire(ctx(), req); err != nil {
		t.Fatalf("after 60 ms under 1000/min: %v", err)
	}
	e.clock.Advance(time.Second)
	if got := available(t, e, "k", "r", raised); got["q"] != 16 { // the token of 60 ms taken, then 1 s at 1000/min
		t.Fatalf("available under the raised limit %v, want 16", got)
	}
	// Available alone applies a change too: lowered to 5/min, the bucket holds at most 5.
	lowered := limiter.PerMinute("q", 5)
	if got := available(t, e, "k", "r", lowered); got["q"] != 5 {
		t.Fatalf("available under the lowered limit %v, want 5", got)
	}
	e.clock.Advance(12 * time.Second) // 1 token at 5/min; full stays full
	if d, err := e.lim.TimeUntilAvailable(ctx(), limiter.AvailableRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{lowered}}, map[string]int64{"q": 5}); err != nil || d != 0 {
		t.Fatalf("time until 5 under the lowered limit: %v %v", d, err)
	}
}

// Row 7: a rollback from a lease object that held 0 of a limit refunds another process's
// adjustment of that limit.
func TestRow7RollbackRefundsOtherProcessAdjustments(t *testing.T) {
	e := newEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm, tpm}, Consume: map[string]int64{"rpm": 1}, LeaseTTL: time.Minute}
	id := mustAcquire(t, e.lim, req).ID()
	a, err := e.lim.Lease(ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.newLimiter().Lease(ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Adjust(ctx(), map[string]int64{"tpm": 500}); err != nil {
		t.Fatal(err)
	}
	if err := a.Rollback(ctx()); err != nil {
		t.Fatalf("rollback from the stale object: %v", err)
	}
	if got := available(t, e, "k", "r", rpm, tpm); got["rpm"] != 100 || got["tpm"] != 15_000 {
		t.Fatalf("after rollback %v, want everything back (tpm adjusted by another process included)", got)
	}
	if c, acq := bucketOf(t, e, "k", "r"); c["tpm"] != 0 || c["rpm"] != 0 || acq != 0 {
		t.Fatalf("counters %v %d after rollback", c, acq)
	}
}

// Row 8: statuses are true after a single-bucket write, whatever other instances took since
// this one last looked; after a transaction they are labelled estimates.
func TestRow8StatusesTrueOrEstimated(t *testing.T) {
	e := newEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm}, Consume: map[string]int64{"rpm": 1}, Cascade: limiter.CascadeOff}
	mustAcquire(t, e.lim, req)
	big := req
	big.Consume = map[string]int64{"rpm": 50}
	mustAcquire(t, e.newLimiter(), big)
	st := mustAcquire(t, e.lim, req).Statuses()
	if st[0].Available != 48 || st[0].Estimated {
		t.Fatalf("status after another instance's take: %+v, want 48 exact", st[0])
	}
	stored := req
	stored.LeaseTTL = time.Minute
	st = mustAcquire(t, e.lim, stored).Statuses()
	if st[0].Estimated || st[0].Available != 47 {
		t.Fatalf("in-item stored lease status %+v: want 47 exact (one UpdateItem answers it)", st[0])
	}
	fillBucket(t, e, stored)
	stored.RequestID = "req-1" // a lease item of its own (the bucket is full): a transaction, which answers nothing
	st = mustAcquire(t, e.lim, stored).Statuses()
	if !st[0].Estimated || st[0].Available < 46 {
		t.Fatalf("stored lease status %+v: want an estimate", st[0])
	}
}

// Row 9: an adjust of only zeros is a no-op that writes nothing; an acquire of only zeros is
// counted and reports the true state.
func TestRow9Zeros(t *testing.T) {
	e := newEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm, tpm}, Consume: map[string]int64{"rpm": 1, "tpm": 100}, LeaseTTL: time.Minute}
	lease := mustAcquire(t, e.lim, req)
	resumed, err := e.newLimiter().Lease(ctx(), lease.ID())
	if err != nil {
		t.Fatal(err)
	}
	e.meter.Reset()
	if err := resumed.Adjust(ctx(), map[string]int64{"rpm": 0, "tpm": 0}); err != nil {
		t.Fatalf("zero adjust: %v", err)
	}
	// It writes nothing; a lease resumed from its id knows only the amounts the id carries, so
	// it reads what it holds (one GetItem), for Consumed (the API's answer) to be true.
	if u := e.meter.Snapshot(); len(u) != 1 || u["GetItem"].Requests != 1 || e.meter.Total().TableWCU != 0 {
		t.Fatalf("zero adjust made %+v, want one read and no write", u)
	}
	if c := resumed.Consumed(); c["tpm"] != 100 || c["rpm"] != 1 {
		t.Fatalf("after a zero adjust the lease holds %v, want rpm 1, tpm 100", c)
	}
	e.meter.Reset()
	if err := lease.Adjust(ctx(), map[string]int64{"rpm": 0, "tpm": 0}); err != nil || e.meter.Total().Requests != 0 {
		t.Fatalf("zero adjust of the acquiring process's lease: %v, %+v requests, want none", err, e.meter.Snapshot())
	}
	other := e.newLimiter()
	mustAcquire(t, other, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm, tpm}, Consume: map[string]int64{"rpm": 9}})
	zero := mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm, tpm}, Consume: map[string]int64{"rpm": 0}})
	st := zero.Statuses()
	if st[0].Available != 90 || st[1].Available != 14_900 || st[0].Estimated {
		t.Fatalf("zero acquire statuses %+v, want the true 90 and 14900", st)
	}
	if _, acq := bucketOf(t, e, "k", "r"); acq != 3 {
		t.Fatalf("acquires %d, want 3 (the zero acquire counts)", acq)
	}
}

// Row 10: waits beyond time.Duration saturate; a refusal waits only for the limits it consumes.
func TestRow10Durations(t *testing.T) {
	e := newEnv(t)
	slow := limiter.NewLimit("slow", 1_000_000, 1, limiter.MaxRefillPeriod)
	fast := limiter.PerSecond("fast", 10)
	lease := mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{slow, fast},
		Consume: map[string]int64{"slow": 1_000_000, "fast": 10}})
	if err := lease.Adjust(ctx(), map[string]int64{"slow": limiter.MaxTokens}); err != nil {
		t.Fatal(err)
	}
	_, err := e.lim.Acquire(ctx(), limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{slow, fast}, Consume: map[string]int64{"slow": 1}})
	var rle *limiter.RateLimitExceededError
	if !errors.As(err, &rle) || rle.RetryAfter != math.MaxInt64 || rle.RetryAfterHeader() != "9223372037" {
		t.Fatalf("wait of 10^13 years: %v (retry after %d), want saturated", err, rle.RetryAfter)
	}
	if d, err := e.lim.TimeUntilAvailable(ctx(), limiter.AvailableRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{slow, fast}}, map[string]int64{"slow": 1}); err != nil || d != math.MaxInt64 {
		t.Fatalf("TimeUntilAvailable %v %v, want saturated", d, err)
	}
	// Consuming only fast: the refusal waits for fast alone (100 ms), not for slow.
	_, err = e.lim.Acquire(ctx(), limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{slow, fast}, Consume: map[string]int64{"fast": 1}})
	if !errors.As(err, &rle) || rle.RetryAfter != 100*time.Millisecond || len(rle.Violations()) != 1 || rle.Violations()[0].Limit.Name != "fast" {
		t.Fatalf("refusal on fast alone: %v, violations %+v", err, rle.Violations())
	}
	e.clock.Advance(100 * time.Millisecond)
	mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{slow, fast}, Consume: map[string]int64{"fast": 1}})
}
