package limiter_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// requestLease is the Go client's acquire: an estimate, a stored lease, one bucket, a request id.
func requestLease(id string) limiter.AcquireRequest {
	r := inItemRequest()
	r.RequestID = id
	return r
}

// An acquire with a request id keeps its lease in the bucket item (one UpdateItem). Its answer
// lost on every try, the call retried by another process (a Lambda killed between attempts,
// the caller retrying): the retry finds the lease under the request's key, answers with it
// (no read) and charges nothing. A resend by the SDK is recognised by its write id as before,
// and a replay answers with the first lease's id.
func TestRequestLeaseLostAnswerReplaysInItem(t *testing.T) {
	e := newRetryEnv(t)
	e.faults.LoseResponse("UpdateItem", -1)
	var ue *limiter.UnavailableError
	if _, err := e.lim.Acquire(ctx(), requestLease("r1")); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("acquire, every answer lost: %v, want an uncertain UnavailableError", err)
	}
	e.faults.Clear()
	e.meter.Reset()
	lease := mustAcquire(t, e.newLimiter(), requestLease("r1"))
	mustInItem(t, lease)
	if u := e.meter.Total(); u.Requests != 1 || u.TableRCU != 0 {
		t.Errorf("replay: %+v, want 1 request (the failed write, which returns the item), 0 RCU", u)
	}
	if st := lease.Statuses(); len(st) != 2 || st[1].Available != 14_500 || st[1].Estimated {
		t.Errorf("replay statuses %+v, want tpm 14500 left, read from the item", st)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 500 || acq != 1 {
		t.Fatalf("bucket %v %d, want one charge of 500", c, acq)
	}

	e.faults.LoseResponse("UpdateItem", 2) // the SDK resends; its third try is answered
	first := mustAcquire(t, e.lim, requestLease("r2"))
	mustInItem(t, first)
	again := mustAcquire(t, e.newLimiter(), requestLease("r2"))
	if again.ID() != first.ID() || again.Consumed()["tpm"] != 500 {
		t.Fatalf("replay %s %v, want %s", again.ID(), again.Consumed(), first.ID())
	}
	if err := again.Settle(ctx(), map[string]int64{"tpm": 800}); err != nil {
		t.Fatal(err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 1300 || acq != 2 {
		t.Fatalf("bucket %v %d, want 500 + 800 in 2 acquires", c, acq)
	}
	// Within storage.TombstoneMs of the settle a replay answers the settled lease; then the
	// request id's lease is gone (as a lease item's is once it expires).
	if l := mustAcquire(t, e.newLimiter(), requestLease("r2")); l.Consumed()["tpm"] != 800 || l.Commit(ctx()) != nil {
		t.Fatalf("replay after the settle: %v", l.Consumed())
	}
	e.clock.Advance(storage.TombstoneMs * time.Millisecond)
	if _, err := e.newLimiter().Acquire(ctx(), requestLease("r2")); !errors.Is(err, limiter.ErrLeaseNotFound) {
		t.Fatalf("replay after the tombstone: %v, want ErrLeaseNotFound", err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 1300 || acq != 2 {
		t.Fatalf("bucket %v %d, want nothing more charged", c, acq)
	}
}

// The hazard of two paths, first order: attempt 1 finds the bucket full and takes the
// lease-item path (its answer lost); by the retry the bucket has room. The retry must not
// create an in-item lease: attempt 1 raised the item's forwarded marker (AttrForwarded) to its
// lease's expiry, so the retry takes the lease-item path too and replays the first lease.
// The same for a cascade lease (in the child's item; both paths are transactions).
func TestRequestLeaseForwardedThenRoomInItem(t *testing.T) {
	for _, pc := range leasePaths() {
		t.Run(pc.name, func(t *testing.T) { testForwardedThenRoomInItem(t, pc) })
	}
}

// leasePath is how a test reaches a request-bound lease: one level, or cascade.
type leasePath struct {
	name      string
	env       func(*testing.T) *env
	lease     func(requestID string) limiter.AcquireRequest
	writeOp   string // the in-item acquire's operation
	writeSkip int    // how many of writeOp's attempts to answer before a lease-item acquire's
}

func leasePaths() []leasePath {
	return []leasePath{
		{"one-level", func(t *testing.T) *env { return newRetryEnv(t) }, requestLease, "UpdateItem", 0},
		{"cascade", func(t *testing.T) *env { return cascadeEnv(t, true) }, cascadeLease, "TransactWriteItems", 1},
	}
}

func testForwardedThenRoomInItem(t *testing.T, pc leasePath) {
	e := pc.env(t)
	fill := fillBucket(t, e, pc.lease(""))
	// The in-item try (refused: the bucket is full) is answered; the lease-item transaction's
	// answers are lost.
	e.faults.LoseResponseAfter("TransactWriteItems", pc.writeSkip, -1)
	var ue *limiter.UnavailableError
	if _, err := e.lim.Acquire(ctx(), pc.lease("r1")); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("acquire on a full bucket, every answer lost: %v, want an uncertain UnavailableError", err)
	}
	e.faults.Clear()
	for _, l := range fill[:2] { // room again, once their tombstones pass
		if err := l.Rollback(ctx()); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(storage.TombstoneMs*time.Millisecond + time.Millisecond)
	retry := mustAcquire(t, e.newLimiter(), pc.lease("r1"))
	if strings.HasPrefix(retry.ID(), "b.") || retry.Consumed()["tpm"] != 500 {
		t.Fatalf("retry got lease %s %v, want the first (a lease item)", retry.ID(), retry.Consumed())
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 500 {
		t.Fatalf("bucket %v, want one charge of 500", c)
	}
	// There is room: a lease without a request id lands in the item (the test tests something).
	mustInItem(t, mustAcquire(t, e.newLimiter(), pc.lease("")))
	// Once the forwarded lease expires, request-bound leases land in the item again.
	e.clock.Advance(time.Minute)
	mustInItem(t, mustAcquire(t, e.newLimiter(), pc.lease("r2")))
}

// The hazard of two paths, second order: attempt 1 lands in the item (its answer lost); the
// retry is served by an instance that believes the bucket full and goes straight to the
// lease-item transaction. The transaction's bucket update is conditioned on the request's
// entry being absent: it fails, returns the item, and the retry replays the in-item lease.
func TestRequestLeaseInItemThenRetryForwarded(t *testing.T) {
	for _, pc := range leasePaths() {
		t.Run(pc.name, func(t *testing.T) { testInItemThenRetryForwarded(t, pc) })
	}
}

func testInItemThenRetryForwarded(t *testing.T, pc leasePath) {
	e := pc.env(t)
	req := pc.lease("")
	for range limiter.MaxInlineLeases - 1 {
		mustInItem(t, mustAcquire(t, e.lim, req))
	}
	e.faults.LoseResponse(pc.writeOp, -1)
	var ue *limiter.UnavailableError
	if _, err := e.lim.Acquire(ctx(), pc.lease("r1")); !errors.As(err, &ue) || !ue.Uncertain {
		t.Fatalf("acquire, every answer lost: %v, want an uncertain UnavailableError", err)
	}
	e.faults.Clear()
	busy := e.newLimiter()
	if l := mustAcquire(t, busy, req); strings.HasPrefix(l.ID(), "b.") { // busy learns the bucket is full
		t.Fatalf("lease %s kept in a full bucket", l.ID())
	}
	e.meter.Reset()
	retry := mustAcquire(t, busy, pc.lease("r1"))
	mustInItem(t, retry)
	if s := e.meter.Snapshot(); s["TransactWriteItems"].Requests != 1 || s["UpdateItem"].Requests != 0 || e.meter.Total().TableRCU != 0 {
		t.Errorf("retry from an instance that knows the bucket full: %+v, want one (failed) transaction, no read", s)
	}
	c, acq := bucketOf(t, e, "key-1", "gpt-4")
	if want := int64(limiter.MaxInlineLeases+1) * 500; c["tpm"] != want || acq != limiter.MaxInlineLeases+1 {
		t.Fatalf("bucket %v %d, want %d tpm in %d acquires (r1 once)", c, acq, want, limiter.MaxInlineLeases+1)
	}
	if err := retry.Settle(ctx(), map[string]int64{"tpm": 100}); err != nil {
		t.Fatalf("settle of the replayed lease: %v", err)
	}
}

// Concurrent duplicates of one request, from eight processes, on a bucket with room and on a
// full one: exactly one charge, and every caller gets the same lease.
func TestRequestLeaseConcurrentDuplicates(t *testing.T) {
	for _, full := range []bool{false, true} {
		e := newEnv(t)
		if full {
			fillBucket(t, e, inItemRequest())
		}
		ids := make([]string, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := e.newLimiter().Acquire(ctx(), requestLease("dup"))
				if errs[i] = err; err == nil {
					ids[i] = l.ID()
				}
			}()
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("full=%v: caller %d: %s %v, want %s", full, i, ids[i], errs[i], ids[0])
			}
		}
		if strings.HasPrefix(ids[0], "b.") == full {
			t.Fatalf("full=%v: lease %s", full, ids[0])
		}
		if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 500 {
			t.Fatalf("full=%v: bucket %v, want one charge of 500", full, c)
		}
	}
}

// A request id names a lease for its principal only: another principal repeating it makes
// another acquire and never receives the first lease's id (whose secret settles it).
func TestRequestLeaseOtherPrincipal(t *testing.T) {
	e := newEnv(t)
	alice, bob := requestLease("r1"), requestLease("r1")
	alice.Principal, bob.Principal = "arn:aws:iam::1:user/alice", "arn:aws:iam::1:user/bob"
	a := mustAcquire(t, e.lim, alice)
	b := mustAcquire(t, e.newLimiter(), bob)
	mustInItem(t, a)
	mustInItem(t, b)
	pa, _ := storage.ParseInlineLeaseID(a.ID())
	pb, _ := storage.ParseInlineLeaseID(b.ID())
	if a.ID() == b.ID() || pa.Key == pb.Key || pa.Secret == pb.Secret || strings.Contains(b.ID(), pa.Secret) {
		t.Fatalf("bob's lease %+v shares with alice's %+v", pb, pa)
	}
	if again := mustAcquire(t, e.newLimiter(), alice); again.ID() != a.ID() {
		t.Fatalf("alice's replay %s, want %s", again.ID(), a.ID())
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 1000 || acq != 2 {
		t.Fatalf("bucket %v %d, want two acquires of 500", c, acq)
	}
}

// Anyone who knows a request can derive its lease's key, not its secret: an id with the right
// key and another secret is not found, whatever it tries, and changes nothing; a process with
// the true id settles it from the id alone (one UpdateItem, no read).
func TestRequestLeaseWrongSecret(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, requestLease("r1"))
	p, err := storage.ParseInlineLeaseID(lease.ID())
	if err != nil {
		t.Fatal(err)
	}
	p.Secret = storage.NewInlineKey()
	forged := storage.FormatInlineLeaseID(p)
	ops := map[string]func(*limiter.Lease) error{
		"adjust":   func(l *limiter.Lease) error { return l.Adjust(ctx(), map[string]int64{"tpm": -400}) },
		"refund":   func(l *limiter.Lease) error { return l.Adjust(ctx(), map[string]int64{"tpm": -501}) },
		"zero":     func(l *limiter.Lease) error { return l.Adjust(ctx(), map[string]int64{"tpm": 0}) },
		"settle":   func(l *limiter.Lease) error { return l.Settle(ctx(), map[string]int64{"tpm": 0}) },
		"commit":   func(l *limiter.Lease) error { return l.Commit(ctx()) },
		"rollback": func(l *limiter.Lease) error { return l.Rollback(ctx()) },
	}
	for name, op := range ops {
		l, err := e.newLimiter().Lease(ctx(), forged)
		if err != nil {
			t.Fatal(err)
		}
		if err := op(l); !errors.Is(err, limiter.ErrLeaseNotFound) {
			t.Errorf("%s with a wrong secret: %v, want ErrLeaseNotFound", name, err)
		}
	}
	p.Secret = ""
	var ve *limiter.ValidationError
	if _, err := e.lim.Lease(ctx(), storage.FormatInlineLeaseID(p)); !errors.As(err, &ve) {
		t.Errorf("a request-bound key without a secret: %v, want a ValidationError", err)
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 500 || acq != 1 {
		t.Fatalf("bucket %v %d after forged calls, want the acquire alone", c, acq)
	}
	other, err := e.newLimiter().Lease(ctx(), lease.ID())
	if err != nil {
		t.Fatal(err)
	}
	e.meter.Reset()
	if err := other.Settle(ctx(), map[string]int64{"tpm": 1250}); err != nil {
		t.Fatal(err)
	}
	if u := e.meter.Total(); u.Requests != 1 || u.TableRCU != 0 || u.TableWCU != 1 {
		t.Errorf("settle from another process: %+v, want 1 request, 0 RCU, 1 WCU", u)
	}
	for name, op := range map[string]func(*limiter.Lease) error{"adjust": ops["adjust"], "rollback": ops["rollback"]} {
		l, _ := e.newLimiter().Lease(ctx(), lease.ID())
		if err := op(l); !errors.Is(err, limiter.ErrLeaseCommitted) {
			t.Errorf("%s after the settle: %v, want ErrLeaseCommitted", name, err)
		}
	}
	if c, _ := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 1250 {
		t.Fatalf("bucket %v, want tpm 1250", c)
	}
}

// Another process resumes a request-bound lease from its id and adjusts (with a key), rolls
// back: each one UpdateItem, exact, and a repeat changes nothing.
func TestRequestLeaseFromAnotherProcess(t *testing.T) {
	e := newEnv(t)
	lease := mustAcquire(t, e.lim, requestLease("r1"))
	for range 2 {
		other, err := e.newLimiter().Lease(ctx(), lease.ID())
		if err != nil {
			t.Fatal(err)
		}
		e.meter.Reset()
		if err := other.AdjustOnce(ctx(), "k1", map[string]int64{"tpm": 700}); err != nil {
			t.Fatal(err)
		}
		if u := e.meter.Total(); u.Requests != 1 || u.TableRCU != 0 {
			t.Errorf("keyed adjust from another process: %+v, want 1 request, 0 RCU", u)
		}
	}
	for range 2 {
		other, _ := e.newLimiter().Lease(ctx(), lease.ID())
		if err := other.Rollback(ctx()); err != nil {
			t.Fatal(err)
		}
	}
	if c, acq := bucketOf(t, e, "key-1", "gpt-4"); c["tpm"] != 0 || c["rpm"] != 0 || acq != 0 {
		t.Fatalf("bucket %v %d, want everything refunded once", c, acq)
	}
}

// A bucket item holding MaxInlineLeases request-bound leases of two limits and a few writer
// lanes stays under 1 KB, so each write of it costs 1 WCU.
func TestRequestLeaseItemSize(t *testing.T) {
	e := newEnv(t)
	for i := range limiter.MaxInlineLeases {
		r := requestLease(strings.Repeat("r", 36) + string(rune('a'+i))) // a UUID's length
		r.Principal = "arn:aws:iam::123456789012:user/limiter-app"
		mustInItem(t, mustAcquire(t, e.newLimiter(), r)) // a lane per limiter
	}
	size := itemSize(t, e, "key-1", "gpt-4")
	if size > 1024 {
		t.Fatalf("bucket item with %d request-bound leases is %d bytes: over 1 KB", limiter.MaxInlineLeases, size)
	}
}
