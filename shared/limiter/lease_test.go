package limiter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func llmRequest() limiter.AcquireRequest {
	return limiter.AcquireRequest{EntityID: "key-1", Resource: "gpt-4", Limits: []limiter.Limit{rpm, tpm},
		Consume: map[string]int64{"rpm": 1, "tpm": 500}}
}

func TestLeaseAdjustCommitRollback(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, llmRequest())
	// Reconciliation: the call used 20000 tokens, far beyond the 15000 burst: never refused.
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": 19_500}); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "key-1", "gpt-4", rpm, tpm); got["tpm"] != -5000 || got["rpm"] != 99 {
		t.Fatalf("after adjust: %v, want tpm -5000", got)
	}
	if got := lease.Consumed(); got["tpm"] != 20_000 || got["rpm"] != 1 {
		t.Fatalf("consumed %v", got)
	}
	// A negative bucket refuses until refill brings it back: 5000 + 1 tokens at 10000/min.
	var rle *limiter.RateLimitExceededError
	if _, err := e.lim.Acquire(ctx(), llmRequest()); !errors.As(err, &rle) {
		t.Fatalf("negative bucket admitted: %v", err)
	}
	if want := 33 * time.Second; rle.RetryAfter != want { // (5000+500)/10000 min = 33 s
		t.Fatalf("retry after %s, want %s", rle.RetryAfter, want)
	}
	// Rollback puts back everything: initial 500 and the 19500 adjustment.
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "key-1", "gpt-4", rpm, tpm); got["tpm"] != 15_000 || got["rpm"] != 100 {
		t.Fatalf("after rollback: %v, want everything back", got)
	}
	// Idempotent, and final.
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", rpm, tpm); got["tpm"] != 15_000 {
		t.Fatalf("second rollback refunded again: %v", got)
	}
	if err := lease.Commit(ctx()); !errors.Is(err, limiter.ErrLeaseRolledBack) {
		t.Fatalf("commit after rollback: %v", err)
	}
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": 1}); !errors.Is(err, limiter.ErrLeaseRolledBack) {
		t.Fatalf("adjust after rollback: %v", err)
	}

	committed := mustAcquire(t, e.lim, llmRequest())
	if err := committed.Commit(ctx()); err != nil {
		t.Fatal(err)
	}
	if err := committed.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("rollback after commit: %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", rpm, tpm); got["tpm"] != 14_500 {
		t.Fatalf("committed consumption: %v", got)
	}
}

func TestAdjustCannotRefundMoreThanHeld(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, llmRequest())
	var ve *limiter.ValidationError
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": -501}); !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	if err := lease.Adjust(ctx(), map[string]int64{"nope": 1}); !errors.As(err, &ve) {
		t.Fatalf("adjust of unknown limit: %v", err)
	}
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": -500}); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 15_000 {
		t.Fatalf("after full refund: %v", got)
	}
}

// TestAdjustBoundedPerLease: adjustments may add up to MaxLeaseTokens per limit and no more; the
// refusal says what the lease holds (it used to wrap around past 2^63 millitokens and refuse
// with "gives back -1000000000000 tokens").
func TestAdjustBoundedPerLease(t *testing.T) {
	e := newEnv(t)
	req := llmRequest()
	req.Consume = map[string]int64{"tpm": 0}
	lease := mustAcquire(t, e.lim, req)
	for i := range limiter.MaxLeaseTokens / limiter.MaxTokens {
		if err := lease.Adjust(ctx(), map[string]int64{"tpm": limiter.MaxTokens}); err != nil {
			t.Fatalf("adjust %d: %v", i, err)
		}
	}
	var ve *limiter.ValidationError
	err := lease.Adjust(ctx(), map[string]int64{"tpm": 1})
	if !errors.As(err, &ve) || ve.Field != "adjust.tpm" ||
		ve.Error() != "invalid adjust.tpm: adds 1 tokens to the 1000000000000000 the lease holds, more than a lease may hold (1000000000000000)" {
		t.Fatalf("adjust past the bound: %v", err)
	}
	if got := lease.Consumed()["tpm"]; got != limiter.MaxLeaseTokens {
		t.Fatalf("lease holds %d", got)
	}
	// Giving back is still allowed, and said right.
	err = lease.Adjust(ctx(), map[string]int64{"tpm": -limiter.MaxTokens})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDoCommitsOrRollsBack(t *testing.T) {
	e := newEnv(t)
	if err := e.lim.Do(ctx(), llmRequest(), func(ctx context.Context, l *limiter.Lease) error {
		return l.Adjust(ctx, map[string]int64{"tpm": 1500})
	}); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 13_000 {
		t.Fatalf("after committed Do: %v", got)
	}
	boom := errors.New("llm failed")
	err := e.lim.Do(ctx(), llmRequest(), func(ctx context.Context, l *limiter.Lease) error {
		_ = l.Adjust(ctx, map[string]int64{"tpm": 700})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Do returned %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 13_000 {
		t.Fatalf("failed Do was not rolled back: %v", got)
	}
	func() {
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Fatalf("panic not re-raised: %v", p)
			}
		}()
		_ = e.lim.Do(ctx(), llmRequest(), func(context.Context, *limiter.Lease) error { panic("kaboom") })
	}()
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 13_000 {
		t.Fatalf("panicking Do was not rolled back: %v", got)
	}
}

func TestRollbackFailureIsReturnedThenRetried(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, llmRequest())
	e.faults.Fail("UpdateItem", -1, nil)
	err := lease.Rollback(ctx())
	var ue *limiter.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ddbtest.ErrInjected) {
		t.Fatalf("want the rollback failure returned, got %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 14_500 {
		t.Fatalf("a failed rollback changed the bucket: %v", got)
	}
	e.faults.Clear()
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatalf("retried rollback: %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 15_000 {
		t.Fatalf("after retried rollback: %v", got)
	}
}

func TestStoredLease(t *testing.T) {
	e := newEnv(t)
	req := llmRequest()
	req.LeaseTTL = time.Minute
	req.RequestID = "req-42"
	fillBucket(t, e, req) // a lease item of its own (see inline_test.go for leases in the bucket item)
	first := mustAcquire(t, e.lim, req)
	if !first.Stored() || !first.ExpiresAt().Equal(e.clock.Now().Add(time.Minute)) {
		t.Fatalf("stored %v expires %s", first.Stored(), first.ExpiresAt())
	}
	// A retry with the same request id returns the same lease and consumes nothing more.
	again := mustAcquire(t, e.newLimiter(), req)
	if again.ID() != first.ID() || again.Consumed()["tpm"] != 500 {
		t.Fatalf("retry returned lease %s %v, want %s", again.ID(), again.Consumed(), first.ID())
	}
	if st := again.Statuses(); len(st) != 2 || st[0].Available+st[1].Available != 99+14_500 || st[0].Requested+st[1].Requested != 501 {
		t.Fatalf("statuses of a replayed acquire: %+v", st)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 14_500 {
		t.Fatalf("idempotent acquire consumed twice: %v", got)
	}
	// Another process adjusts, then rolls back: everything comes back.
	other, err := e.newLimiter().Lease(ctx(), first.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Adjust(ctx(), map[string]int64{"tpm": 2000}); err != nil {
		t.Fatal(err)
	}
	// The first process still believes the lease holds 500: the stored amounts win.
	if err := first.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if c := first.Consumed(); len(c) != 0 {
		t.Fatalf("a rolled-back lease still holds %v", c)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm, rpm); got["tpm"] != 15_000 || got["rpm"] != 100 {
		t.Fatalf("after rollback of a lease adjusted elsewhere: %v", got)
	}
	// Rolling back again from the other process changes nothing; commit is refused.
	if err := other.Rollback(ctx()); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", tpm); got["tpm"] != 15_000 {
		t.Fatalf("second rollback refunded again: %v", got)
	}
	third, _ := e.newLimiter().Lease(ctx(), first.ID())
	if err := third.Commit(ctx()); !errors.Is(err, limiter.ErrLeaseRolledBack) {
		t.Fatalf("commit after rollback: %v", err)
	}

	// Commit in one process, rollback in another: 409-like error, nothing refunded.
	req.RequestID = "req-43"
	l2 := mustAcquire(t, e.lim, req)
	if err := l2.Commit(ctx()); err != nil {
		t.Fatal(err)
	}
	l2b, _ := e.newLimiter().Lease(ctx(), l2.ID())
	if err := l2b.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("rollback of committed lease: %v", err)
	}
	// Unknown, forged and expired ids.
	forged := first.ID()[:65] + "0123456789abcdef0123456789abcdef" // the request's part, a guessed secret
	for _, id := range []string{"nope", "0123456789abcdef0123456789abcdef", first.ID()[:31] + "g", forged, first.ID()[:64]} {
		if _, err := e.lim.Lease(ctx(), id); !errors.Is(err, limiter.ErrLeaseNotFound) {
			t.Fatalf("Lease(%q) = %v", id, err)
		}
	}
	req.RequestID = "req-44"
	l3 := mustAcquire(t, e.lim, req)
	e.clock.Advance(time.Minute)
	if _, err := e.lim.Lease(ctx(), l3.ID()); !errors.Is(err, limiter.ErrLeaseNotFound) {
		t.Fatalf("expired lease: %v", err)
	}
	if err := l3.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseNotFound) {
		t.Fatalf("rollback of expired lease: %v", err)
	}
}
