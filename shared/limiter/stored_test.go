package limiter_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestStoredLimitsResolutionOrder(t *testing.T) {
	e := newEnv(t)
	set := func(sc limiter.Scope, rate int64) {
		t.Helper()
		if err := e.lim.SetLimits(ctx(), sc, []limiter.Limit{limiter.PerMinute("rpm", rate)}); err != nil {
			t.Fatal(err)
		}
	}
	capacity := func() int64 {
		t.Helper()
		ls, err := e.lim.ResolveLimits(ctx(), "key", "gpt-4")
		if err != nil {
			t.Fatal(err)
		}
		if ls == nil {
			return 0
		}
		return ls[0].Capacity
	}
	if c := capacity(); c != 0 {
		t.Fatalf("nothing stored resolved to %d", c)
	}
	set(limiter.SystemDefault(), 1)
	if c := capacity(); c != 1 {
		t.Fatalf("system default: %d", c)
	}
	set(limiter.ResourceDefault("gpt-4"), 2)
	set(limiter.ResourceDefault("other"), 99)
	if c := capacity(); c != 2 {
		t.Fatalf("resource default: %d", c)
	}
	set(limiter.EntityDefault("key"), 3)
	if c := capacity(); c != 3 {
		t.Fatalf("entity default: %d", c)
	}
	set(limiter.EntityResource("key", "gpt-4"), 4)
	if c := capacity(); c != 4 {
		t.Fatalf("entity+resource: %d", c)
	}
	got, err := e.lim.GetLimits(ctx(), limiter.EntityDefault("key"))
	if err != nil || len(got) != 1 || got[0] != limiter.PerMinute("rpm", 3) {
		t.Fatalf("GetLimits %v %v", got, err)
	}
	for _, sc := range []limiter.Scope{limiter.EntityResource("key", "gpt-4"), limiter.EntityDefault("key"), limiter.ResourceDefault("gpt-4")} {
		if err := e.lim.DeleteLimits(ctx(), sc); err != nil {
			t.Fatal(err)
		}
	}
	if c := capacity(); c != 1 {
		t.Fatalf("after deletes: %d, want system default", c)
	}
	if err := e.lim.DeleteLimits(ctx(), limiter.EntityDefault("key")); !errors.Is(err, limiter.ErrLimitsNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Acquire uses stored limits only when asked; otherwise the call's limits count.
	call := limiter.PerMinute("rpm", 50)
	req := limiter.AcquireRequest{EntityID: "key", Resource: "gpt-4", Limits: []limiter.Limit{call}, Consume: map[string]int64{"rpm": 2}}
	mustAcquire(t, e.lim, req) // the call's 50
	req.UseStoredLimits = true
	var ve *limiter.ValidationError
	if _, err := e.lim.Acquire(ctx(), req); !errors.As(err, &ve) {
		t.Fatalf("2 tokens of a stored limit of capacity 1 can never pass: %v", err)
	}
	req.Consume = map[string]int64{"rpm": 1}
	mustAcquire(t, e.lim, req)
	var rle *limiter.RateLimitExceededError
	if _, err := e.lim.Acquire(ctx(), req); !errors.As(err, &rle) || rle.Statuses[0].Limit.Capacity != 1 {
		t.Fatalf("stored system default (capacity 1) should refuse a second token: %v", err)
	}
	if err := e.lim.SetLimits(ctx(), limiter.EntityResource("key", "_default_"), []limiter.Limit{call}); !errors.As(err, &ve) {
		t.Fatalf("reserved resource: %v", err)
	}
}

func TestStoredLimitsCacheTTL(t *testing.T) {
	e := newEnv(t)
	acquirer := e.newLimiter(limiter.WithCacheTTL(30 * time.Second))
	if err := e.lim.SetLimits(ctx(), limiter.EntityDefault("key"), []limiter.Limit{limiter.PerMinute("rpm", 10)}); err != nil {
		t.Fatal(err)
	}
	resolve := func() int64 {
		t.Helper()
		ls, err := acquirer.ResolveLimits(ctx(), "key", "r")
		if err != nil || ls == nil {
			t.Fatalf("resolve: %v %v", ls, err)
		}
		return ls[0].Capacity
	}
	if c := resolve(); c != 10 {
		t.Fatalf("first resolve %d", c)
	}
	// Another instance (the admin API) changes the limits: this one sees the change only when
	// its cache entry expires, 30 s later by its clock.
	if err := e.lim.SetLimits(ctx(), limiter.EntityDefault("key"), []limiter.Limit{limiter.PerMinute("rpm", 20)}); err != nil {
		t.Fatal(err)
	}
	e.meter.Reset()
	if c := resolve(); c != 10 {
		t.Fatalf("within TTL: %d, want cached 10", c)
	}
	if n := e.meter.Total().Requests; n != 0 {
		t.Fatalf("cached resolve made %d requests", n)
	}
	e.clock.Advance(30 * time.Second)
	if c := resolve(); c != 20 {
		t.Fatalf("after TTL: %d, want 20", c)
	}
}

func TestAvailableAndTimeUntilAvailable(t *testing.T) {
	e := newEnv(t)
	lim := limiter.NewLimit("tpm", 1000, 100, time.Second) // 100 tokens/s, burst 1000
	req := limiter.AvailableRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{lim}}
	if got := available(t, e, "k", "r", lim); got["tpm"] != 1000 {
		t.Fatalf("new bucket %v", got)
	}
	mustAcquire(t, e.lim, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{lim}, Consume: map[string]int64{"tpm": 950}})
	e.meter.Reset()
	d, err := e.lim.TimeUntilAvailable(ctx(), req, map[string]int64{"tpm": 50})
	if err != nil || d != 0 {
		t.Fatalf("available now: %s %v", d, err)
	}
	if d, _ = e.lim.TimeUntilAvailable(ctx(), req, map[string]int64{"tpm": 51}); d != 10*time.Millisecond {
		t.Fatalf("wait for 51: %s, want 10ms", d)
	}
	if d, _ = e.lim.TimeUntilAvailable(ctx(), req, map[string]int64{"tpm": 1000}); d != 9500*time.Millisecond {
		t.Fatalf("wait for 1000: %s, want 9.5s", d)
	}
	if u := e.meter.Total(); u.Requests != 3 || u.TableWCU != 0 {
		t.Fatalf("peeks cost %+v: want reads only", u)
	}
	var ve *limiter.ValidationError
	if _, err := e.lim.TimeUntilAvailable(ctx(), req, map[string]int64{"tpm": 1001}); !errors.As(err, &ve) {
		t.Fatalf("more than capacity: %v", err)
	}
	e.clock.Advance(9500 * time.Millisecond)
	if got := available(t, e, "k", "r", lim); got["tpm"] != 1000 {
		t.Fatalf("after wait %v", got)
	}
}

func TestFailureModes(t *testing.T) {
	e := newEnv(t)
	req := llmRequest()
	req.Cascade = limiter.CascadeOff
	e.faults.Fail("", -1, nil)
	_, err := e.lim.Acquire(ctx(), req)
	var ue *limiter.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ddbtest.ErrInjected) {
		t.Fatalf("fail closed: %v", err)
	}
	req.FailureMode = limiter.FailOpen
	lease, err := e.lim.Acquire(ctx(), req)
	if err != nil || !lease.Degraded() {
		t.Fatalf("fail open per call: %v %v", lease, err)
	}
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": 5}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	open := e.newLimiter(limiter.WithFailureMode(limiter.FailOpen))
	req.FailureMode = limiter.FailureModeDefault
	if lease, err := open.Acquire(ctx(), req); err != nil || !lease.Degraded() {
		t.Fatalf("fail open by default: %v", err)
	}
	req.FailureMode = limiter.FailClosed
	if _, err := open.Acquire(ctx(), req); !errors.As(err, &ue) {
		t.Fatalf("per-call fail closed override: %v", err)
	}
	e.faults.Clear()
	// A refusal is never turned into an admission by fail open.
	req.FailureMode = limiter.FailOpen
	req.Consume = map[string]int64{"tpm": 15_000}
	mustAcquire(t, e.lim, req)
	var rle *limiter.RateLimitExceededError
	if _, err := e.lim.Acquire(ctx(), req); !errors.As(err, &rle) {
		t.Fatalf("fail open admitted a refusal: %v", err)
	}
}

// TestContention: 32 goroutines hammer one bucket of capacity C. Without refill exactly C
// acquires pass; with refill never more than C plus what refilled.
func TestContention(t *testing.T) {
	const goroutines, capacity = 32, 50
	for _, tc := range []struct {
		name   string
		limit  limiter.Limit
		refill func(elapsed time.Duration) int64
	}{
		{"no refill", limiter.NewLimit("rpm", capacity, 1, limiter.MaxRefillPeriod), func(time.Duration) int64 { return 0 }},
		{"refill", limiter.NewLimit("rpm", capacity, 20, time.Second), func(d time.Duration) int64 { return int64(d / (50 * time.Millisecond)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			start := e.clock.Now()
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lim := e.newLimiter() // one limiter per "Lambda instance"
					for range 10 {
						if g == 0 {
							e.clock.Advance(100 * time.Millisecond)
						}
						_, err := lim.Acquire(ctx(), limiter.AcquireRequest{EntityID: "hot", Resource: "r",
							Limits: []limiter.Limit{tc.limit}, Consume: map[string]int64{"rpm": 1}, Cascade: limiter.CascadeOff})
						var rle *limiter.RateLimitExceededError
						switch {
						case err == nil:
							admitted.Add(1)
						case errors.As(err, &rle):
						default:
							t.Errorf("acquire: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := e.clock.Now().Sub(start)
			bound := capacity + tc.refill(elapsed)
			got := admitted.Load()
			if tc.name == "no refill" && got != capacity {
				t.Fatalf("admitted %d, want exactly %d", got, capacity)
			}
			if got > bound || got < capacity {
				t.Fatalf("admitted %d, want %d..%d (elapsed %s)", got, capacity, bound, elapsed)
			}
			t.Logf("admitted %d of %d attempts (bound %d)", got, goroutines*10, bound)
		})
	}
}

// TestCostPerOperation asserts the cost table of docs/benchmarks.md: requests, RCU and WCU (as
// DynamoDB Local reports them) and index WCU of every operation, warm caches.
func TestCostPerOperation(t *testing.T) {
	e := newEnv(t)
	req := llmRequest()
	req.Cascade = limiter.CascadeOff
	stored := req
	stored.LeaseTTL = time.Minute
	cascade := llmRequest()
	cascade.EntityID, cascade.Cascade = "child", limiter.CascadeOn
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "proj"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "child", ParentID: "proj"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []limiter.AcquireRequest{req, req, cascade, cascade} { // create and warm
		mustAcquire(t, e.lim, r)
	}
	acquire := func(r limiter.AcquireRequest) func() (*limiter.Lease, error) {
		return func() (*limiter.Lease, error) { return mustAcquire(t, e.lim, r), nil }
	}
	lease := func(r limiter.AcquireRequest, op func(*limiter.Lease) error) func() (*limiter.Lease, error) {
		return func() (*limiter.Lease, error) {
			l := mustAcquire(t, e.lim, r)
			e.meter.Reset()
			return l, op(l)
		}
	}
	// A stored lease of one bucket lives in its bucket item, with or without a request id;
	// each row uses a bucket of its own so that none is full of earlier rows' leases. On a
	// bucket already holding MaxInlineLeases (and for cascade) it has an item of its own: the
	// first acquire that finds the bucket full pays one failed write more (it learns so),
	// later ones go straight to the transaction.
	rows := 0
	inItem := func() limiter.AcquireRequest {
		rows++
		r := stored
		r.Resource = fmt.Sprintf("in-item-%d", rows)
		mustAcquire(t, e.lim, r).Rollback(ctx()) // create the bucket (and warm)
		return r
	}
	requestInItem := func() limiter.AcquireRequest {
		r := inItem()
		r.RequestID = fmt.Sprintf("req-%d", rows)
		return r
	}
	// A cascade lease lives in the child's item: each write is a transaction of the two buckets.
	cascadeInItem := func() limiter.AcquireRequest {
		rows++
		r := cascade
		r.LeaseTTL, r.Resource, r.RequestID = time.Minute, fmt.Sprintf("cascade-%d", rows), fmt.Sprintf("req-%d", rows)
		w := r
		w.RequestID = ""
		mustAcquire(t, e.lim, w).Rollback(ctx()) // create the buckets (and warm)
		return r
	}
	full := stored
	full.Resource = "full"
	fillBucket(t, e, full)
	full.RequestID = "warm"
	if l := mustAcquire(t, e.lim, full); strings.HasPrefix(l.ID(), "b.") {
		t.Fatalf("lease %s kept in a full bucket", l.ID())
	}
	item := func() limiter.AcquireRequest {
		rows++
		r := full
		r.RequestID = fmt.Sprintf("req-%d", rows)
		return r
	}
	replay := func() (*limiter.Lease, error) {
		r := requestInItem()
		first := mustAcquire(t, e.lim, r)
		e.meter.Reset()
		again, err := e.newLimiter().Acquire(ctx(), r)
		if err == nil && again.ID() != first.ID() {
			err = fmt.Errorf("replay %s, want %s", again.ID(), first.ID())
		}
		return again, err
	}
	resumedOf := func(r func() limiter.AcquireRequest, op func(*limiter.Lease) error) func() (*limiter.Lease, error) {
		return func() (*limiter.Lease, error) {
			l, err := e.newLimiter().Lease(ctx(), mustAcquire(t, e.lim, r()).ID())
			if err != nil {
				return nil, err
			}
			e.meter.Reset()
			return l, op(l)
		}
	}
	adjust := func(n int64) func(*limiter.Lease) error {
		return func(l *limiter.Lease) error { return l.Adjust(ctx(), map[string]int64{"tpm": n}) }
	}
	commit := func(l *limiter.Lease) error { return l.Commit(ctx()) }
	settle := func(l *limiter.Lease) error { return l.Settle(ctx(), map[string]int64{"tpm": 1250}) }
	rollback := func(l *limiter.Lease) error { return l.Rollback(ctx()) }
	for _, row := range []struct {
		name          string
		op            func() (*limiter.Lease, error)
		requests      int
		wcu, indexWCU float64 // as DynamoDB Local reports
	}{
		{"acquire", acquire(req), 1, 1, 0},
		{"acquire-cascade", acquire(cascade), 1, 2, 0},
		{"acquire-stored-lease", func() (*limiter.Lease, error) { r := inItem(); e.meter.Reset(); return acquire(r)() }, 1, 1, 0},
		{"acquire-stored-lease-request", func() (*limiter.Lease, error) { r := requestInItem(); e.meter.Reset(); return acquire(r)() }, 1, 1, 0},
		{"acquire-stored-lease-request-replay", replay, 1, 0, 0}, // a failed write: 1 WCU on AWS
		{"acquire-stored-lease-item", acquire(item()), 1, 2, 0},
		{"acquire-cascade-stored-lease", func() (*limiter.Lease, error) {
			r := cascadeInItem()
			e.meter.Reset()
			l, _ := acquire(r)()
			if !strings.HasPrefix(l.ID(), "b.") { // Local reports 2 WCU for any transaction: say which
				return l, fmt.Errorf("lease %s is not in the child's item (a 3-item transaction)", l.ID())
			}
			return l, nil
		}, 1, 2, 0},
		{"adjust", lease(req, adjust(100)), 1, 1, 0},
		{"adjust-refund", lease(req, adjust(-100)), 1, 1, 0},
		{"commit", lease(req, commit), 0, 0, 0},
		{"rollback", lease(req, rollback), 1, 1, 0},
		{"rollback-cascade", lease(cascade, rollback), 1, 2, 0},
		{"adjust-stored-lease", resumedOf(inItem, adjust(100)), 1, 1, 0},
		{"commit-stored-lease", resumedOf(inItem, commit), 1, 1, 0},
		{"rollback-stored-lease", resumedOf(inItem, rollback), 1, 1, 0},
		{"adjust-stored-lease-item", resumedOf(item, adjust(100)), 1, 2, 0},
		{"commit-stored-lease-item", resumedOf(item, commit), 1, 1, 0},
		{"rollback-stored-lease-item", resumedOf(item, rollback), 1, 2, 0},
		{"settle", lease(req, settle), 1, 1, 0},
		{"settle-stored-lease", resumedOf(inItem, settle), 1, 1, 0},
		{"settle-stored-lease-item", resumedOf(item, settle), 1, 2, 0},
		{"adjust-stored-lease-request", resumedOf(requestInItem, adjust(100)), 1, 1, 0},
		{"rollback-stored-lease-request", resumedOf(requestInItem, rollback), 1, 1, 0},
		{"settle-stored-lease-request", resumedOf(requestInItem, settle), 1, 1, 0},
		{"adjust-cascade-stored-lease", resumedOf(cascadeInItem, adjust(100)), 1, 2, 0},
		{"commit-cascade-stored-lease", resumedOf(cascadeInItem, commit), 1, 1, 0},
		{"rollback-cascade-stored-lease", resumedOf(cascadeInItem, rollback), 1, 2, 0},
		{"settle-cascade-stored-lease", resumedOf(cascadeInItem, settle), 1, 2, 0},
	} {
		e.meter.Reset()
		if _, err := row.op(); err != nil {
			t.Fatalf("%s: %v", row.name, err)
		}
		u := e.meter.Total()
		if u.Requests != row.requests || u.TableRCU != 0 || u.TableWCU != row.wcu || u.IndexWCU != row.indexWCU {
			t.Errorf("%s: %+v, want %d requests, 0 RCU, %v WCU, %v index WCU", row.name, u, row.requests, row.wcu, row.indexWCU)
		}
	}
	// A refusal costs one failed conditional write. The first refusal under a changed limit
	// reads the stored state and re-bases it (a read and a write: the change is written once),
	// and the next refusal is one request again.
	tight := req
	tight.Limits, tight.Consume = []limiter.Limit{limiter.PerDay("d", 1)}, map[string]int64{"d": 1}
	tight.Resource = "tight"
	mustAcquire(t, e.lim, tight)
	for i, want := range []int{1, 2, 1} {
		if i == 1 {
			tight.Limits = []limiter.Limit{limiter.PerDay("d", 2).WithBurst(1)}
		}
		e.meter.Reset()
		if _, err := e.lim.Acquire(ctx(), tight); err == nil {
			t.Fatal("admitted")
		}
		if n := e.meter.Total().Requests; n != want {
			t.Errorf("refusal %d: %+v, want %d requests", i, e.meter.Snapshot(), want)
		}
	}
}

// SetStoredEntityLimits writes an entity's limits only while the entity is stored, checked in
// the write's own transaction: after a DeleteEntity (here by another instance, as the admin API
// checking first and writing second could not see) it is refused and leaves nothing behind;
// other scopes need no entity.
func TestSetStoredEntityLimits(t *testing.T) {
	e := newEnv(t)
	rpm := []limiter.Limit{limiter.PerMinute("rpm", 10)}
	err := e.lim.SetStoredEntityLimits(ctx(), limiter.EntityDefault("never"), rpm)
	if !errors.Is(err, limiter.ErrEntityNotFound) || strings.Contains(err.Error(), "storage") {
		t.Fatalf("limits of an entity never stored: %v, want ErrEntityNotFound saying only what GetEntity says", err)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "key"}); err != nil {
		t.Fatal(err)
	}
	e.meter.Reset()
	if err := e.lim.SetStoredEntityLimits(ctx(), limiter.EntityResource("key", "gpt-4"), rpm); err != nil {
		t.Fatalf("limits of a stored entity: %v", err)
	}
	got := e.meter.Snapshot()
	if got["GetItem"].Requests != 1 || got["TransactWriteItems"].Requests != 1 || len(got) != 2 {
		t.Errorf("set limits of a stored entity: %+v, want 1 GetItem and 1 TransactWriteItems", got)
	}
	// Applied, its answer lost: the resend is recognised by its audit record, and the change is
	// recorded once.
	e.faults.LoseResponse("TransactWriteItems", 1)
	if err := e.lim.SetStoredEntityLimits(ctx(), limiter.EntityDefault("key"), rpm); err != nil {
		t.Fatalf("limits set with the answer lost: %v", err)
	}
	if e.faults.Lost() != 1 {
		t.Fatalf("%d answers lost, want 1", e.faults.Lost())
	}
	if log, err := e.lim.AuditLog(ctx(), limiter.Scope{EntityID: "key"}, 0, ""); err != nil || len(log.Records) != 3 {
		t.Fatalf("audit log of key: %d records, %v; want 3 (create, two limits changes)", len(log.Records), err)
	}
	if err := e.newLimiter().DeleteEntity(ctx(), "key"); err != nil {
		t.Fatal(err)
	}
	if err := e.lim.SetStoredEntityLimits(ctx(), limiter.EntityDefault("key"), rpm); !errors.Is(err, limiter.ErrEntityNotFound) {
		t.Fatalf("limits of a deleted entity: %v, want ErrEntityNotFound", err)
	}
	for _, sc := range []limiter.Scope{limiter.EntityDefault("key"), limiter.EntityResource("key", "gpt-4"), limiter.EntityDefault("never")} {
		if _, err := e.lim.GetLimits(ctx(), sc); !errors.Is(err, limiter.ErrLimitsNotFound) {
			t.Errorf("limits of %+v after the refusals: %v, want ErrLimitsNotFound", sc, err)
		}
	}
	page, err := e.lim.AuditLog(ctx(), limiter.Scope{EntityID: "never"}, 0, "")
	if err != nil || len(page.Records) != 0 {
		t.Errorf("audit log of the never-stored entity: %+v, %v; want no record", page.Records, err)
	}
	if err := e.lim.SetStoredEntityLimits(ctx(), limiter.ResourceDefault("gpt-4"), rpm); err != nil {
		t.Errorf("resource limits: %v", err)
	}
}
