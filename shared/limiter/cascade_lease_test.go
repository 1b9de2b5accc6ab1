package limiter_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// cascadeEnv is an env with a project and a key that cascades to it.
func cascadeEnv(t *testing.T, retries bool) *env {
	t.Helper()
	e := newEnv(t)
	if retries {
		e = newRetryEnv(t)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "proj"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "key-1", ParentID: "proj", Cascade: true}); err != nil {
		t.Fatal(err)
	}
	return e
}

// cascadeLease is the LLM flow's acquire for a key that cascades to its project.
func cascadeLease(requestID string) limiter.AcquireRequest {
	r := llmRequest()
	r.LeaseTTL, r.RequestID = time.Minute, requestID
	return r
}

// A cascade lease lives in the child's bucket item, holding both levels' amounts: acquire,
// adjust, settle and rollback are each one two-item transaction (the buckets; no lease item),
// commit one UpdateItem of the child, from any process, with no read.
func TestCascadeLeaseInItem(t *testing.T) {
	e := cascadeEnv(t, false)
	mustAcquire(t, e.lim, cascadeLease("")).Rollback(ctx()) // create the buckets
	e.meter.Reset()
	lease := mustAcquire(t, e.lim, cascadeLease("r1"))
	mustInItem(t, lease)
	if s := e.meter.Snapshot(); len(s) != 1 || s["TransactWriteItems"].Requests != 1 {
		t.Fatalf("cascade acquire: %+v, want one transaction", s)
	}
	p, err := storage.ParseInlineLeaseID(lease.ID())
	if err != nil || p.ParentID != "proj" || p.ParentAmounts["tpm"] != 500_000 {
		t.Fatalf("id %+v %v, want the parent and its amounts", p, err)
	}
	other, err := e.newLimiter().Lease(ctx(), lease.ID())
	if err != nil {
		t.Fatal(err)
	}
	e.meter.Reset()
	if err := other.Adjust(ctx(), map[string]int64{"tpm": 300}); err != nil {
		t.Fatal(err)
	}
	if s := e.meter.Snapshot(); len(s) != 1 || s["TransactWriteItems"].Requests != 1 || e.meter.Total().TableRCU != 0 {
		t.Fatalf("cascade adjust from another process: %+v, want one transaction, no read", s)
	}
	// The acquiring process still believes the lease holds 500: the entry's amounts win.
	if err := lease.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatalf("settle: %v", err)
	}
	for _, id := range []string{"key-1", "proj"} {
		if c, acq := bucketOf(t, e, id, "gpt-4"); c["tpm"] != 1250 || c["rpm"] != 1 || acq != 1 {
			t.Fatalf("%s: %v %d, want tpm 1250, rpm 1, 1 acquire", id, c, acq)
		}
	}
	again, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := again.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatalf("settle repeated from another process: %v", err)
	}
	if err := again.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("rollback after settle: %v", err)
	}
	// The request replayed: the settled lease, nothing charged.
	if l := mustAcquire(t, e.newLimiter(), cascadeLease("r1")); l.Consumed()["tpm"] != 1250 || l.Commit(ctx()) != nil {
		t.Fatalf("replay after the settle holds %v", l.Consumed())
	}

	// A rollback from a cold process, after another process adjusted: both levels refunded
	// exactly what the entry holds.
	second := mustAcquire(t, e.lim, cascadeLease(""))
	mustInItem(t, second)
	adj, _ := e.newLimiter().Lease(ctx(), second.ID())
	if err := adj.AdjustOnce(ctx(), "k", map[string]int64{"tpm": 700}); err != nil {
		t.Fatal(err)
	}
	if err := adj.AdjustOnce(ctx(), "k", map[string]int64{"tpm": 700}); err != nil {
		t.Fatal(err)
	}
	rb, _ := e.newLimiter().Lease(ctx(), second.ID())
	e.meter.Reset()
	if err := rb.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if u := e.meter.Total(); u.Requests > 2 || u.TableRCU != 0 {
		t.Errorf("rollback from a cold process: %+v, want at most 2 transactions (the first told the amounts), no read", u)
	}
	for _, id := range []string{"key-1", "proj"} {
		if c, acq := bucketOf(t, e, id, "gpt-4"); c["tpm"] != 1250 || c["rpm"] != 1 || acq != 1 {
			t.Fatalf("%s after the rollback: %v %d, want the first lease alone", id, c, acq)
		}
	}
	if got := available(t, e, "proj", "gpt-4", rpm, tpm); got["tpm"] != 15_000-1250 {
		t.Fatalf("parent available %v", got)
	}
}

// Lost answers of a cascade lease's transactions: the SDK's resends apply once at both levels;
// a cascade acquire whose every answer is lost is replayed by a retry with its request id.
func TestCascadeLeaseLostAnswers(t *testing.T) {
	e := cascadeEnv(t, true)
	e.faults.LoseResponse("TransactWriteItems", -1)
	var ue *limiter.UnavailableError
	if _, err := e.lim.Acquire(ctx(), cascadeLease("r1")); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("acquire, every answer lost: %v", err)
	}
	e.faults.Clear()
	lease := mustAcquire(t, e.newLimiter(), cascadeLease("r1"))
	mustInItem(t, lease)
	e.faults.LoseResponse("TransactWriteItems", 2)
	other, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := other.Settle(ctx(), map[string]int64{"tpm": 900}); err != nil {
		t.Fatalf("settle, two answers lost: %v", err)
	}
	e.faults.Clear()
	for _, id := range []string{"key-1", "proj"} {
		if c, acq := bucketOf(t, e, id, "gpt-4"); c["tpm"] != 900 || c["rpm"] != 1 || acq != 1 {
			t.Fatalf("%s: %v %d, want tpm 900 once, 1 acquire", id, c, acq)
		}
	}
}

// Six request-bound cascade leases (each entry also holds the parent's amounts) and six writer
// lanes keep the child's item under 1 KB.
func TestCascadeLeaseItemSize(t *testing.T) {
	e := cascadeEnv(t, false)
	for i := range limiter.MaxInlineLeases {
		r := cascadeLease(strings.Repeat("r", 36) + string(rune('a'+i)))
		r.Principal = "arn:aws:iam::123456789012:user/limiter-app"
		mustInItem(t, mustAcquire(t, e.newLimiter(), r))
	}
	if size := itemSize(t, e, "key-1", "gpt-4"); size > 1024 {
		t.Fatalf("child item with %d request-bound cascade leases is %d bytes: over 1 KB", limiter.MaxInlineLeases, size)
	}
}

// A cascade acquire refused by the parent's condition alone: the transaction returns the
// parent's item, not the child's, so the child's statuses come from the instance's cache (unless
// it read the child before the transaction, to learn its lanes) and are labelled estimates,
// and neither refuse nor set the wait (found by TestModel/cascade: a
// stale child status made RetryAfter 68 s where the parent needed 4).
func TestCascadeRefusalByTheParent(t *testing.T) {
	e := cascadeEnv(t, false)
	cached := e.newLimiter()
	req := llmRequest()
	mustAcquire(t, cached, req) // cached knows both buckets
	drain := llmRequest()
	drain.EntityID, drain.Cascade, drain.Consume = "proj", limiter.CascadeOff, map[string]int64{"tpm": 14_000}
	mustAcquire(t, e.lim, drain) // the parent: 15000 - 500 - 14000 = 500 left
	child := llmRequest()
	child.Cascade, child.Consume = limiter.CascadeOff, map[string]int64{"tpm": 2000}
	mustAcquire(t, e.lim, child) // the child: 12500 left, which cached does not know
	req.Consume = map[string]int64{"tpm": 600}
	_, err := cached.Acquire(ctx(), req)
	var rle *limiter.RateLimitExceededError
	if !errors.As(err, &rle) {
		t.Fatalf("acquire of 600 with 500 left at the parent: %v, want a refusal", err)
	}
	for _, s := range rle.Statuses {
		switch {
		case s.EntityID == "proj" && s.Limit.Name == "tpm" && (s.Estimated || !s.Exceeded || s.Available != 500):
			t.Errorf("parent status %+v, want 500 left, exceeded, read", s)
		case s.EntityID == "key-1" && s.Estimated && s.Exceeded:
			t.Errorf("child status %+v: an estimate refuses", s)
		case s.EntityID == "key-1" && s.Limit.Name == "tpm" && !s.Estimated && s.Available != 12_500:
			t.Errorf("child status %+v, want the true 12500 or an estimate", s)
		}
	}
	if rle.RetryAfter != rle.PrimaryViolation().RetryAfter || rle.PrimaryViolation().EntityID != "proj" {
		t.Fatalf("retry after %s from %+v, want the parent's wait", rle.RetryAfter, rle.PrimaryViolation())
	}
}

// A request-bound cascade acquire that took every token, its answers lost, retried by an
// instance whose cached buckets have lanes it has not read lately (which makes a transaction
// read a bucket first): the retry must find its lease, not be refused from that read.
func TestCascadeLeaseRetryNotRefusedFromARead(t *testing.T) {
	e := cascadeEnv(t, true)
	busy := e.newLimiter()
	mustAcquire(t, busy, cascadeLease("")) // busy caches both buckets
	e.clock.Advance(6 * time.Minute)       // refilled; busy's view of their lanes is old
	all := cascadeLease("r1")
	all.LeaseTTL, all.Consume = 10*time.Minute, map[string]int64{"tpm": 15_000}
	e.faults.LoseResponse("TransactWriteItems", -1)
	var ue *limiter.UnavailableError
	if _, err := e.lim.Acquire(ctx(), all); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("acquire, every answer lost: %v", err)
	}
	e.faults.Clear()
	retry, err := busy.Acquire(ctx(), all)
	if err != nil {
		t.Fatalf("retry of an acquire that took every token: %v, want its lease", err)
	}
	mustInItem(t, retry)
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 15_500 {
		t.Fatalf("child %v, want 500 + 15000 once", c)
	}
}
