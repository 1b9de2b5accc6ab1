package limiter_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/testclock"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// newRetryEnv is newEnv with the SDK's retries on (3 attempts, no delay): what a lost response
// leads to in production, a resend of the same request.
func newRetryEnv(t *testing.T, opts ...limiter.Option) *env {
	t.Helper()
	e := &env{clock: testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)), meter: ddbtest.NewMeter(), faults: &ddbtest.Faults{}}
	e.client = ddbtest.Client(t, e.meter.Option(), e.faults.Option(), ddbtest.FastRetries(3))
	e.table = ddbtest.NewTable(t, e.client).Name()
	e.lim = e.newLimiter(opts...)
	return e
}

var daily = limiter.PerDay("d", 50) // no refill worth counting within a test

// bucketOf returns the stored consumed counter (tokens) and acquire counter of a bucket.
func bucketOf(t *testing.T, e *env, entity, resource string) (consumed map[string]int64, acquires int64) {
	t.Helper()
	b, err := storage.New(e.client, e.table).GetBucket(ctx(), entity, resource)
	if err != nil {
		t.Fatal(err)
	}
	consumed = map[string]int64{}
	for name, st := range b.Limits {
		tokens, ok := st.Consumed.Quo(1000).Int64()
		if !ok {
			t.Fatalf("%s consumed %s millitokens", name, st.Consumed)
		}
		consumed[name] = tokens
	}
	return consumed, b.Acquires
}

// Row 2: an acquire whose response is lost is resent by the SDK; it must be charged once, and
// the caller told it was admitted. 30% of responses lost, some of them twice in a row.
func TestLostResponsesChargeOnce(t *testing.T) {
	for _, stored := range []bool{false, true} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			e := newRetryEnv(t)
			rng := rand.New(rand.NewPCG(1, 2))
			req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 1}}
			op := "UpdateItem"
			if stored {
				// In-item leases (UpdateItem), then lease items once the bucket is full.
				req.LeaseTTL, op = time.Minute, ""
			}
			admitted, refused := 0, 0
			for i := range 60 {
				if rng.IntN(10) < 3 {
					e.faults.LoseResponse(op, 1+rng.IntN(2))
				}
				if stored && i%2 == 0 {
					req.RequestID = fmt.Sprintf("req-%d", i)
				} else {
					req.RequestID = ""
				}
				_, err := e.lim.Acquire(ctx(), req)
				var rle *limiter.RateLimitExceededError
				switch {
				case err == nil:
					admitted++
				case errors.As(err, &rle) && !rle.Contended:
					refused++
				default:
					t.Fatalf("acquire %d: %v", i, err)
				}
				e.faults.Clear()
			}
			if e.faults.Lost() == 0 {
				t.Fatal("no response was lost: the test tests nothing")
			}
			consumed, acquires := bucketOf(t, e, "k", "r")
			if admitted != 50 || refused != 10 || consumed["d"] != 50 || acquires != 50 {
				t.Fatalf("admitted %d refused %d; bucket consumed %d in %d acquires; want 50/10/50/50 (lost %d responses)",
					admitted, refused, consumed["d"], acquires, e.faults.Lost())
			}
		})
	}
}

// A write whose every response is lost is reported as unavailable and uncertain; resent by
// the same call's retry... the state shows it once.
func TestEveryResponseLostIsUncertainNotDoubled(t *testing.T) {
	e := newRetryEnv(t)
	lease := mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 10}})
	e.faults.LoseResponse("UpdateItem", -1)
	err := lease.Rollback(ctx())
	var ue *limiter.UnavailableError
	if !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("rollback with every response lost: %v, want an uncertain UnavailableError", err)
	}
	e.faults.Clear()
	if got := available(t, e, "k", "r", daily); got["d"] != 50 {
		t.Fatalf("after the lost rollback: %v, want the 10 refunded once", got)
	}
	// Retrying the rollback resends the same write: recognised, not refunded again.
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "k", "r", daily); got["d"] != 50 {
		t.Fatalf("after the retried rollback: %v, want 50 (refunded once)", got)
	}
	if consumed, acquires := bucketOf(t, e, "k", "r"); consumed["d"] != 0 || acquires != 0 {
		t.Fatalf("counters %v %d after rollback, want 0 0", consumed, acquires)
	}
}

// Row 1: refunds of one stored lease through lease objects loaded afresh (as the HTTP API does
// per request) all apply, however close in time; the same idempotency key applies once.
func TestStoredLeaseRefundsFromFreshObjects(t *testing.T) {
	e := newRetryEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 30}, LeaseTTL: time.Minute}
	id := mustAcquire(t, e.lim, req).ID()
	for range 2 { // two identical refunds in the same ms, from two objects
		l, err := e.lim.Lease(ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Adjust(ctx(), map[string]int64{"d": -5}); err != nil {
			t.Fatalf("refund: %v", err)
		}
	}
	for range 3 { // one refund sent three times with its key, from three objects (processes)
		l, err := e.newLimiter().Lease(ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.AdjustOnce(ctx(), "refund-7", map[string]int64{"d": -7}); err != nil {
			t.Fatalf("keyed refund: %v", err)
		}
		if got := l.Consumed()["d"]; got != 13 {
			t.Fatalf("lease holds %d after keyed refund, want 13", got)
		}
	}
	if got := available(t, e, "k", "r", daily); got["d"] != 37 {
		t.Fatalf("available %v, want 37 (30 - 5 - 5 - 7 taken)", got)
	}
	if c, _ := bucketOf(t, e, "k", "r"); c["d"] != 13 {
		t.Fatalf("consumed %v, want 13", c)
	}
}

// Row 3: an adjust answered "unavailable" may have been applied; retried with its key, it
// counts once, whichever process retries it.
func TestAdjustRetriedWithKeyCountsOnce(t *testing.T) {
	// memory: an in-memory lease; in-item: a stored lease kept in its bucket item (one
	// UpdateItem); item: a stored lease in an item of its own (a request id: transactions).
	for _, mode := range []string{"memory", "in-item", "item"} {
		t.Run(mode, func(t *testing.T) {
			stored := mode != "memory"
			e := newRetryEnv(t)
			req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 1}}
			op := "UpdateItem"
			if stored {
				req.LeaseTTL = time.Minute
			}
			if mode == "item" {
				fillBucket(t, e, req)
				req.RequestID, op = "req-1", "TransactWriteItems"
			}
			lease := mustAcquire(t, e.lim, req)
			e.faults.LoseResponse(op, -1)
			err := lease.AdjustOnce(ctx(), "k1", map[string]int64{"d": 9})
			var ue *limiter.UnavailableError
			if !errors.As(err, &ue) || !ue.Uncertain {
				t.Fatalf("adjust with every response lost: %v", err)
			}
			e.faults.Clear()
			retry := lease
			if stored { // another process retries
				if retry, err = e.newLimiter().Lease(ctx(), lease.ID()); err != nil {
					t.Fatal(err)
				}
			}
			if err := retry.AdjustOnce(ctx(), "k1", map[string]int64{"d": 9}); err != nil {
				t.Fatalf("retried adjust: %v", err)
			}
			if err := retry.AdjustOnce(ctx(), "k1", map[string]int64{"d": 9}); err != nil {
				t.Fatalf("adjust retried after success: %v", err)
			}
			if c, _ := bucketOf(t, e, "k", "r"); c["d"] != 10 {
				t.Fatalf("consumed %v, want 10 (1 + 9 once)", c)
			}
			if got := retry.Consumed()["d"]; got != 10 {
				t.Fatalf("lease holds %d, want 10", got)
			}
			if err := retry.Rollback(ctx()); err != nil {
				t.Fatal(err)
			}
			if c, _ := bucketOf(t, e, "k", "r"); c["d"] != 0 {
				t.Fatalf("consumed %v after rollback, want 0", c)
			}
		})
	}
}

// Rows 4 and 5: 64 clients on one bucket. Contention is never unavailability: no
// UnavailableError failing closed, no degraded (fail-open) lease, and the bucket holds exactly
// what was admitted, never more than its capacity.
func TestHotBucketIsNeverUnavailable(t *testing.T) {
	for _, stored := range []bool{false, true} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			e := newEnv(t)
			capacity := int64(100)
			lim := limiter.PerDay("d", capacity)
			var (
				mu                           sync.Mutex
				admitted, refused, contended int
				failures                     []error
			)
			var wg sync.WaitGroup
			for c := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := e.lim
					if c%4 == 0 {
						l = e.newLimiter() // several Lambda instances
					}
					for range 3 {
						req := limiter.AcquireRequest{EntityID: "hot", Resource: "r", Limits: []limiter.Limit{lim}, Consume: map[string]int64{"d": 1}}
						if stored {
							req.LeaseTTL = time.Minute
						}
						if c%2 == 0 {
							req.FailureMode = limiter.FailOpen
						}
						lease, err := l.Acquire(ctx(), req)
						var rle *limiter.RateLimitExceededError
						mu.Lock()
						switch {
						case err == nil && lease.Degraded():
							failures = append(failures, errors.New("degraded lease on a healthy table"))
						case err == nil:
							admitted++
						case errors.As(err, &rle) && rle.Contended:
							contended++
						case errors.As(err, &rle):
							refused++
						default:
							failures = append(failures, err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d failures on a healthy table, first: %v", len(failures), failures[0])
			}
			consumed, acquires := bucketOf(t, e, "hot", "r")
			t.Logf("admitted %d, refused %d, refused for contention %d", admitted, refused, contended)
			if int64(admitted) > capacity || consumed["d"] != int64(admitted) || acquires != int64(admitted) {
				t.Fatalf("admitted %d of capacity %d; bucket consumed %d in %d acquires", admitted, capacity, consumed["d"], acquires)
			}
			if got := available(t, e, "hot", "r", lim); got["d"] != capacity-int64(admitted) {
				t.Fatalf("available %d, want %d", got["d"], capacity-int64(admitted))
			}
		})
	}
}

// Injected transaction conflicts are retried, and past the attempts allowed the acquire is
// refused for contention, never unavailable, never admitted open; throttling past the SDK's
// budget is unavailability, and only then does fail-open admit, saying why.
func TestConflictIsContentionThrottlingIsUnavailability(t *testing.T) {
	e := newRetryEnv(t, limiter.WithMaxAttempts(4))
	// A stored lease on a bucket full of in-item leases: a two-item transaction.
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 1},
		LeaseTTL: time.Minute, FailureMode: limiter.FailOpen, RequestID: "req-1"}
	fillBucket(t, e, req)
	e.faults.FailAttempts("TransactWriteItems", 3, ddbtest.Conflict(2))
	if _, err := e.lim.Acquire(ctx(), req); err != nil {
		t.Fatalf("acquire after 3 conflicts: %v", err)
	}
	req.RequestID = "req-2"
	e.faults.FailAttempts("TransactWriteItems", -1, ddbtest.Conflict(2))
	lease, err := e.lim.Acquire(ctx(), req)
	var rle *limiter.RateLimitExceededError
	if !errors.As(err, &rle) || !rle.Contended || rle.RetryAfter <= 0 || lease != nil {
		t.Fatalf("endless conflicts: lease %v, err %v; want a contended refusal", lease, err)
	}
	if len(rle.Violations()) != 0 || rle.Statuses[0].Available != 49 {
		t.Fatalf("contended refusal statuses %+v, want the fresh state: 49 available, no violation", rle.Statuses)
	}
	e.faults.Clear()
	e.faults.FailAttempts("", -1, ddbtest.Throttled())
	req.RequestID = "req-3"
	lease, err = e.lim.Acquire(ctx(), req)
	var ue *limiter.UnavailableError
	if err != nil || !lease.Degraded() || !errors.As(lease.DegradedCause(), &ue) {
		t.Fatalf("throttled past the budget, failing open: %v %v", lease, err)
	}
	req.FailureMode, req.RequestID = limiter.FailClosed, "req-4"
	if _, err := e.lim.Acquire(ctx(), req); !errors.As(err, &ue) {
		t.Fatalf("throttled, failing closed: %v", err)
	}
	e.faults.Clear()
	if c, a := bucketOf(t, e, "k", "r"); c["d"] != 1 || a != 1+limiter.MaxInlineLeases {
		t.Fatalf("bucket %v %d, want only the first acquire (and the leases of nothing filling it)", c, a)
	}
}

// Row 12: a leased acquire without a request id whose answers are lost is recognised when the
// SDK resends it: the caller gets the lease that was written (no invisible open lease, no
// second charge), and any process can settle it. Such a lease lives in its bucket item: one
// UpdateItem, recognised by its write id.
func TestRow12LostLeasedAcquireWithoutRequestID(t *testing.T) {
	e := newRetryEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 4}, LeaseTTL: time.Minute}
	e.faults.LoseResponse("UpdateItem", 2)
	lease, err := e.lim.Acquire(ctx(), req)
	if err != nil || e.faults.Lost() != 2 {
		t.Fatalf("acquire with two answers lost: %v (lost %d)", err, e.faults.Lost())
	}
	if c, acq := bucketOf(t, e, "k", "r"); c["d"] != 4 || acq != 1 {
		t.Fatalf("bucket %v %d, want one charge of 4", c, acq)
	}
	other, err := e.newLimiter().Lease(ctx(), lease.ID())
	if err != nil {
		t.Fatalf("the lease the caller was given is not the one stored: %v", err)
	}
	if err := other.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if c, acq := bucketOf(t, e, "k", "r"); c["d"] != 0 || acq != 0 {
		t.Fatalf("after rollback by another process: %v %d", c, acq)
	}
}

// An in-memory lease whose keyed adjustment was left uncertain (applied, every answer lost)
// refunds it exactly on rollback: the adjustment is resent under its write id first.
func TestRollbackAfterUncertainAdjust(t *testing.T) {
	e := newRetryEnv(t)
	lease := mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{daily}, Consume: map[string]int64{"d": 2}})
	e.faults.LoseResponse("UpdateItem", -1)
	var ue *limiter.UnavailableError
	if err := lease.AdjustOnce(ctx(), "k1", map[string]int64{"d": 5}); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("adjust with every answer lost: %v", err)
	}
	e.faults.Clear()
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if c, acq := bucketOf(t, e, "k", "r"); c["d"] != 0 || acq != 0 {
		t.Fatalf("after rollback: consumed %v, acquires %d; want 0 0", c, acq)
	}
	if got := available(t, e, "k", "r", daily); got["d"] != 50 {
		t.Fatalf("available %v, want 50", got)
	}
}

// Settle: acquire with an estimate, then commit the real count in one write, exact whichever
// process settles, idempotent, and applied once when its answers are lost.
func TestSettle(t *testing.T) {
	e := newRetryEnv(t)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm, tpm}, Consume: map[string]int64{"rpm": 1, "tpm": 500}}
	lease := mustAcquire(t, e.lim, req)
	e.meter.Reset()
	if err := lease.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatal(err)
	}
	if u := e.meter.Total(); u.Requests != 1 || u.TableWCU != 1 {
		t.Fatalf("in-memory settle cost %+v, want 1 request, 1 WCU", u)
	}
	if c, _ := bucketOf(t, e, "k", "r"); c["tpm"] != 1250 || c["rpm"] != 1 {
		t.Fatalf("after settle: %v", c)
	}
	if err := lease.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatalf("repeated settle: %v", err)
	}
	if err := lease.Settle(ctx(), map[string]int64{"tpm": 7}); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("settle to other amounts after commit: %v", err)
	}

	// A stored lease, adjusted by another process, settled by a stale object with every
	// first answer lost: the bucket keeps exactly the final count.
	req.Resource, req.LeaseTTL = "s", time.Minute
	stale := mustAcquire(t, e.lim, req)
	other, err := e.newLimiter().Lease(ctx(), stale.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Adjust(ctx(), map[string]int64{"tpm": 100}); err != nil {
		t.Fatal(err)
	}
	e.faults.LoseResponse("TransactWriteItems", 2)
	if err := stale.Settle(ctx(), map[string]int64{"tpm": 1250, "rpm": 0}); err != nil {
		t.Fatalf("settle from the stale object: %v", err)
	}
	e.faults.Clear()
	if c, acq := bucketOf(t, e, "k", "s"); c["tpm"] != 1250 || c["rpm"] != 0 || acq != 1 {
		t.Fatalf("after settling the stored lease: %v %d, want tpm 1250, rpm 0", c, acq)
	}
	again, err := e.newLimiter().Lease(ctx(), stale.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatalf("settle repeated by a third process: %v", err)
	}
	if err := again.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("rollback after settle: %v", err)
	}
	var ve *limiter.ValidationError
	if err := mustAcquire(t, e.lim, req).Settle(ctx(), map[string]int64{"nope": 1}); !errors.As(err, &ve) {
		t.Fatalf("settle of an unknown limit: %v", err)
	}
}
