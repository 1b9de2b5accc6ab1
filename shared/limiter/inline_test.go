package limiter_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// inItemRequest is the HTTP flow's acquire: an estimate, a stored lease, no cascade, no
// request id: its lease lives in the bucket item.
func inItemRequest() limiter.AcquireRequest {
	r := llmRequest()
	r.Cascade, r.LeaseTTL = limiter.CascadeOff, time.Minute
	return r
}

// fillBucket fills req's bucket up to limiter.MaxInlineLeases open in-item leases of nothing
// (they consume no tokens, and count as acquires), so that the next stored lease on it goes to
// a lease item of its own, as on a busy bucket.
func fillBucket(t *testing.T, e *env, req limiter.AcquireRequest) []*limiter.Lease {
	t.Helper()
	req.RequestID, req.LeaseTTL, req.Consume = "", time.Minute, map[string]int64{}
	for _, lim := range req.Limits {
		req.Consume[lim.Name] = 0
	}
	b, err := storage.New(e.client, e.table).GetBucket(ctx(), req.EntityID, req.Resource)
	if err != nil {
		t.Fatal(err)
	}
	var out []*limiter.Lease
	for range limiter.MaxInlineLeases - b.LeaseCount {
		l := mustAcquire(t, e.lim, req)
		mustInItem(t, l)
		out = append(out, l)
	}
	return out
}

func mustInItem(t *testing.T, l *limiter.Lease) {
	t.Helper()
	if !strings.HasPrefix(l.ID(), "b.") {
		t.Fatalf("lease %s is not kept in its bucket item", l.ID())
	}
}

// The LLM flow from two processes: acquire with an estimate, settle with the real count from a
// process with nothing cached: one UpdateItem each. A settle repeated (a client retry, another
// process) with the same count is answered as the first; with another count, or a rollback,
// it is a conflict; nothing is charged twice.
func TestInItemLeaseSettledByAnotherProcess(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	mustInItem(t, lease)
	e.meter.Reset()
	other, err := e.newLimiter().Lease(ctx(), lease.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatalf("settle: %v", err)
	}
	if u := e.meter.Total(); u.Requests != 1 || u.TableRCU != 0 || u.TableWCU != 1 {
		t.Fatalf("load + settle from a cold process: %+v, want 1 request, 0 RCU, 1 WCU", u)
	}
	for _, final := range []int64{1250, 1250} {
		again, err := e.newLimiter().Lease(ctx(), lease.ID())
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Settle(ctx(), map[string]int64{"tpm": final}); err != nil {
			t.Fatalf("repeated settle: %v", err)
		}
		if err := again.Commit(ctx()); err != nil {
			t.Fatalf("commit after settle: %v", err)
		}
	}
	again, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := again.Settle(ctx(), map[string]int64{"tpm": 900}); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("settle with another count: %v, want ErrLeaseCommitted", err)
	}
	again, _ = e.newLimiter().Lease(ctx(), lease.ID())
	if err := again.Rollback(ctx()); !errors.Is(err, limiter.ErrLeaseCommitted) {
		t.Fatalf("rollback after settle: %v, want ErrLeaseCommitted", err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 1250 || c["rpm"] != 1 || acq != 1 {
		t.Fatalf("bucket %v %d, want tpm 1250, rpm 1, 1 acquire", c, acq)
	}
}

// A rollback by one process, then a settle by another: 409 rolled back; the rollback repeated
// anywhere is a no-op, and the refund is made once.
func TestInItemLeaseSettleAfterRollback(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	mustInItem(t, lease)
	a, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := a.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	b, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := b.Settle(ctx(), map[string]int64{"tpm": 10}); !errors.Is(err, limiter.ErrLeaseRolledBack) {
		t.Fatalf("settle after rollback: %v, want ErrLeaseRolledBack", err)
	}
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatalf("rollback again from the acquiring object: %v", err)
	}
	if err := lease.Commit(ctx()); !errors.Is(err, limiter.ErrLeaseRolledBack) {
		t.Fatalf("commit after rollback: %v, want ErrLeaseRolledBack", err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 0 || c["rpm"] != 0 || acq != 0 {
		t.Fatalf("bucket %v %d after rollback, want all 0", c, acq)
	}
}

// Lost answers: the SDK resends an in-item acquire, settle and rollback; each applies once. A
// rollback whose every answer is lost is retried by another process: refunded once.
func TestInItemLeaseLostAnswers(t *testing.T) {
	e := newRetryEnv(t)
	e.faults.LoseResponse("UpdateItem", 2)
	lease, err := e.lim.Acquire(ctx(), inItemRequest())
	if err != nil || e.faults.Lost() != 2 {
		t.Fatalf("acquire, two answers lost: %v (lost %d)", err, e.faults.Lost())
	}
	mustInItem(t, lease)
	e.faults.Clear()
	e.faults.LoseResponse("UpdateItem", 2)
	other, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := other.Settle(ctx(), map[string]int64{"tpm": 2000}); err != nil {
		t.Fatalf("settle, two answers lost: %v", err)
	}
	e.faults.Clear()
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 2000 || acq != 1 {
		t.Fatalf("bucket %v %d, want tpm 2000 once, 1 acquire", c, acq)
	}

	second := mustAcquire(t, e.lim, inItemRequest())
	e.faults.LoseResponse("UpdateItem", -1)
	err = second.Rollback(ctx())
	var ue *limiter.UnavailableError
	if !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("rollback, every answer lost: %v, want an uncertain UnavailableError", err)
	}
	e.faults.Clear()
	retry, _ := e.newLimiter().Lease(ctx(), second.ID())
	if err := retry.Rollback(ctx()); err != nil {
		t.Fatalf("rollback retried by another process: %v", err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 2000 || c["rpm"] != 1 || acq != 1 {
		t.Fatalf("bucket %v %d, want the second lease refunded once", c, acq)
	}
}

// An adjustment by another process, then a settle from the id alone (which says the lease
// holds the estimate): the settle's condition fails, it retries from what the item holds, and
// keeps exactly the final count. A forged id cannot refund more than the lease holds.
func TestInItemLeaseIDIsOnlyAGuess(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	a, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := a.Adjust(ctx(), map[string]int64{"tpm": 300}); err != nil {
		t.Fatal(err)
	}
	b, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := b.Settle(ctx(), map[string]int64{"tpm": 700}); err != nil {
		t.Fatalf("settle after another process's adjust: %v", err)
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 700 {
		t.Fatalf("consumed %v, want tpm 700", c)
	}

	second := mustAcquire(t, e.lim, inItemRequest())
	p, err := storage.ParseInlineLeaseID(second.ID())
	if err != nil {
		t.Fatal(err)
	}
	p.Amounts["tpm"] = 14_000_000 // claims 14000 tokens held
	forged, err := e.newLimiter().Lease(ctx(), storage.FormatInlineLeaseID(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 700 || acq != 1 {
		t.Fatalf("after the forged rollback: %v %d, want tpm 700 (500 refunded, not 14000)", c, acq)
	}
	for _, bad := range []string{"b.", "b.!!", "b.e30", second.ID() + "A", strings.Replace(second.ID(), "b.", "b.x", 1)} {
		var ve *limiter.ValidationError
		if _, err := e.lim.Lease(ctx(), bad); !errors.As(err, &ve) {
			t.Errorf("Lease(%q): %v, want a ValidationError", bad, err)
		}
	}
}

// A limit changed between acquire and settle (the bucket re-based by an acquire under the new
// one): the settle, whose id names the old parameters, is written under the stored ones.
func TestInItemLeaseSettleAfterLimitChange(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	changed := inItemRequest()
	changed.Limits = []limiter.Limit{rpm, limiter.PerMinute("tpm", 20_000)}
	changed.LeaseTTL = 0
	mustAcquire(t, e.lim, changed).Commit(ctx())
	other, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := other.Settle(ctx(), map[string]int64{"tpm": 100}); err != nil {
		t.Fatalf("settle after the limit changed: %v", err)
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 600 {
		t.Fatalf("consumed %v, want tpm 600 (100 + the other acquire's 500)", c)
	}
}

// A bucket keeps at most MaxInlineLeases leases; more open leases fall back to lease items;
// once they expire (and stand as committed) an acquire removes them in its own write and keeps
// its lease in the item again. Settled leases free their place after storage.TombstoneMs.
func TestInItemLeaseFallbackAndCleanup(t *testing.T) {
	e := newEnv(t)
	var open []*limiter.Lease
	for range limiter.MaxInlineLeases {
		l := mustAcquire(t, e.lim, inItemRequest())
		mustInItem(t, l)
		open = append(open, l)
	}
	b, err := storage.New(e.client, e.table).GetBucket(ctx(), "key-1", "gpt-4")
	if err != nil {
		t.Fatal(err)
	}
	if size := itemSize(t, e, "key-1", "gpt-4"); size > 1024 {
		t.Errorf("bucket item with %d leases is %d bytes: over 1 KB, each write costs more than 1 WCU", len(b.Leases), size)
	}
	// Another instance, which has not seen the item, learns it is full from the refused write.
	other := e.newLimiter()
	e.meter.Reset()
	full := mustAcquire(t, other, inItemRequest())
	if strings.HasPrefix(full.ID(), "b.") {
		t.Fatalf("lease %s kept in a full bucket", full.ID())
	}
	if u := e.meter.Total(); u.Requests != 2 {
		t.Errorf("first acquire on a full bucket: %+v, want 2 requests (the refused in-item write, the transaction)", u)
	}
	e.meter.Reset()
	mustAcquire(t, other, inItemRequest())
	if u := e.meter.Total(); u.Requests != 1 {
		t.Errorf("next acquire on a full bucket: %+v, want 1 request (the transaction)", u)
	}
	// The instance that filled it read the item with its first write, and knows.
	e.meter.Reset()
	mustAcquire(t, e.lim, inItemRequest())
	if u := e.meter.Total(); u.Requests != 1 {
		t.Errorf("acquire on a full bucket by the instance that filled it: %+v, want 1 request (the transaction)", u)
	}
	// Settled leases stay as tombstones for a while, then make room.
	if err := open[0].Settle(ctx(), map[string]int64{"tpm": 100}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(storage.TombstoneMs*time.Millisecond + time.Millisecond)
	l := mustAcquire(t, e.lim, inItemRequest())
	mustInItem(t, l)
	// Expired leases stand as committed and make room too.
	e.clock.Advance(2 * time.Minute)
	if err := open[1].Settle(ctx(), map[string]int64{"tpm": 1}); !errors.Is(err, limiter.ErrLeaseNotFound) {
		t.Fatalf("settle of an expired lease: %v, want ErrLeaseNotFound", err)
	}
	for range limiter.MaxInlineLeases {
		mustInItem(t, mustAcquire(t, e.lim, inItemRequest()))
	}
	b, err = storage.New(e.client, e.table).GetBucket(ctx(), "key-1", "gpt-4")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Leases) != limiter.MaxInlineLeases || b.LeaseCount != limiter.MaxInlineLeases {
		t.Fatalf("bucket holds %d leases (count %d), want %d", len(b.Leases), b.LeaseCount, limiter.MaxInlineLeases)
	}
	// Max + 3 + 1 + Max acquires of 500 tpm; the settled one kept 100; expired ones stand.
	n := int64(2*limiter.MaxInlineLeases + 4)
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != (n-1)*500+100 || acq != n {
		t.Fatalf("bucket %v %d, want tpm %d, %d acquires", c, acq, (n-1)*500+100, n)
	}
}

// itemSize returns a stored item's size as DynamoDB counts it (names and values in bytes;
// numbers as about one byte per two digits plus one).
func itemSize(t *testing.T, e *env, entity, resource string) int {
	t.Helper()
	out, err := e.client.GetItem(ctx(), &dynamodb.GetItemInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: storage.PrefixBucket + entity},
			"SK": &types.AttributeValueMemberS{Value: storage.PrefixBucket + resource}}})
	if err != nil || out.Item == nil {
		t.Fatalf("get bucket item: %v", err)
	}
	var size func(v types.AttributeValue) int
	size = func(v types.AttributeValue) int {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return len(v.Value)
		case *types.AttributeValueMemberN:
			return (len(strings.TrimLeft(v.Value, "-"))+1)/2 + 1
		case *types.AttributeValueMemberBOOL:
			return 1
		case *types.AttributeValueMemberM:
			n := 3
			for k, x := range v.Value {
				n += len(k) + size(x) + 1
			}
			return n
		}
		t.Fatalf("unexpected attribute %T", v)
		return 0
	}
	n := 0
	for k, v := range out.Item {
		n += len(k) + size(v)
	}
	t.Logf("bucket item: %d bytes", n)
	return n
}

// A settle to the amounts this process believes the lease holds, after another process
// adjusted it, still keeps exactly the final count (not the other process's amount).
func TestInItemLeaseSettleUnchangedAfterOtherAdjust(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	other, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := other.Adjust(ctx(), map[string]int64{"tpm": 200}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Settle(ctx(), map[string]int64{"tpm": 500}); err != nil {
		t.Fatalf("settle to the estimate: %v", err)
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 500 {
		t.Fatalf("consumed %v, want tpm 500", c)
	}
}

// A lease resumed by id knows the amounts it was acquired with; a refund of more than those,
// but not more than another process's adjustment made it hold, is applied (one read decides),
// and one beyond what it holds is refused.
func TestInItemLeaseRefundBeyondTheIDsAmounts(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, inItemRequest())
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": 1000}); err != nil {
		t.Fatal(err)
	}
	other, _ := e.newLimiter().Lease(ctx(), lease.ID())
	if err := other.Adjust(ctx(), map[string]int64{"tpm": -1200}); err != nil {
		t.Fatalf("refund of 1200 of the 1500 held (the id says 500): %v", err)
	}
	var ve *limiter.ValidationError
	if err := other.Adjust(ctx(), map[string]int64{"tpm": -301}); !errors.As(err, &ve) {
		t.Fatalf("refund of 301 of the 300 held: %v, want a ValidationError", err)
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 300 {
		t.Fatalf("consumed %v, want tpm 300", c)
	}
}

// Eight processes race to settle or roll back one in-item lease: exactly one outcome is
// written; the others are told it (nil for the same settle, 409 for the other kind), and the
// bucket's counters are exact.
func TestInItemLeaseRacingSettles(t *testing.T) {
	for round := range 3 {
		e := newEnv(t)
		lease := mustAcquire(t, e.lim, inItemRequest())
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := e.newLimiter().Lease(ctx(), lease.ID())
				if err != nil {
					errs[i] = err
					return
				}
				if (i+round)%2 == 0 {
					errs[i] = l.Settle(ctx(), map[string]int64{"tpm": 800})
				} else {
					errs[i] = l.Rollback(ctx())
				}
			}()
		}
		wg.Wait()
		committed := false // told by a settle that succeeded, or a rollback refused
		for i, err := range errs {
			settle := (i+round)%2 == 0
			switch {
			case err == nil && settle:
				committed = true
			case err == nil: // a rollback that won (or found it rolled back)
			case errors.Is(err, limiter.ErrLeaseRolledBack) && settle:
			case errors.Is(err, limiter.ErrLeaseCommitted) && !settle:
				committed = true
			default:
				t.Fatalf("round %d, process %d: %v", round, i, err)
			}
		}
		c, acq := bucketOf(t, e, "key-1", "gpt-4")
		switch {
		case committed && (c["tpm"] != 800 || acq != 1):
			t.Fatalf("round %d: committed, bucket %v %d, want tpm 800, 1 acquire (%v)", round, c, acq, errs)
		case !committed && (c["tpm"] != 0 || acq != 0):
			t.Fatalf("round %d: rolled back, bucket %v %d, want 0 0 (%v)", round, c, acq, errs)
		}
	}
}
