package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// options are the load's shape, shared by every scenario.
type options struct {
	clients     int
	duration    time.Duration // each scenario stops after this long…
	ops         int           // …or after this many operations, whichever comes first
	failureMode string        // fail_closed or fail_open
	runID       string        // makes entity ids unique per run
	faulty      bool
	// refillCapacity is the capacity of the refill scenario's bucket (it refills 100/s).
	refillCapacity int64
}

// limitSpec is a limit in the API's full spelling.
type limitSpec struct {
	Name     string `json:"name"`
	Capacity int64  `json:"capacity"`
	Amount   int64  `json:"refill_amount"`
	PeriodS  int64  `json:"refill_period_seconds"`
}

// bound is the most a full bucket of l can grant in elapsed: its capacity and every whole token
// refilled (the limiter counts in millitokens; a whole token is 1000 of them).
func (l limitSpec) bound(elapsed time.Duration) int64 {
	milli := l.Amount * 1000 * elapsed.Milliseconds() / (l.PeriodS * 1000)
	return l.Capacity + milli/1000
}

// scenarioRun is one scenario under way: its result, guarded for the clients' goroutines.
type scenarioRun struct {
	mu  sync.Mutex
	res *result
}

// update changes the result under the lock; on a nil run it does nothing.
func (r *scenarioRun) update(f func(*result)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	f(r.res)
	r.mu.Unlock()
}

func (r *scenarioRun) problem(format string, args ...any) {
	r.update(func(res *result) {
		if len(res.Problems) < 10 {
			res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		}
	})
}

// drive runs op from o.clients goroutines until o.duration passes or o.ops operations were
// started, and fills in the result's counts and latencies.
func drive(ctx context.Context, e *env, o options, name string, op func(ctx context.Context, a *api, rng *rand.Rand, r *scenarioRun)) *scenarioRun {
	rec := newRecorder()
	a := (&api{base: e.url, http: httpClient()}).withRecorder(rec)
	r := &scenarioRun{res: &result{Name: name, Clients: o.clients, Bound: -1}}
	var started atomic.Int64
	deadline := time.Now().Add(o.duration)
	if e.proxy != nil {
		e.proxy.SetPaused(false)
	}
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range o.clients {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= int64(o.ops) {
				op(ctx, a, rng, r)
			}
		}(uint64(i) + 1)
	}
	wg.Wait()
	r.res.Elapsed = time.Since(begin)
	if e.proxy != nil {
		e.proxy.SetPaused(true)
	}
	r.res.Statuses, r.res.Requests = rec.snapshot()
	r.res.P50, r.res.P99 = rec.percentile(50), rec.percentile(99)
	return r
}

// acquireBody is a commit:true acquire of one token of l.
func acquireBody(entity, resource string, l limitSpec, failureMode string) map[string]any {
	return map[string]any{"entity_id": entity, "resource": resource, "limits": []limitSpec{l},
		"consume": map[string]int64{l.Name: 1}, "commit": true, "failure_mode": failureMode}
}

// countAcquire books one commit:true acquire of one token.
func countAcquire(r *scenarioRun, ans answer) {
	switch {
	case ans.Status == 200 && ans.Body["degraded"] == true:
		r.update(func(res *result) { res.Degraded++ })
	case ans.Status == 200:
		r.update(func(res *result) { res.Admitted++; res.Ledger.told(1) })
	case ans.contended():
		r.update(func(res *result) { res.Contended++ })
	case ans.Status == 429:
	case ans.ambiguous():
		r.update(func(res *result) { res.Ledger.maybe(1) })
	default:
		r.problem("acquire answered %d: %v %v", ans.Status, ans.Body, ans.Err)
	}
}

// charged reads what the table holds for a limit, straight from DynamoDB, in whole tokens.
func charged(ctx context.Context, e *env, entity, resource, limit string) (int64, error) {
	b, err := storage.New(e.direct, e.table).GetBucket(ctx, entity, resource)
	if err != nil {
		return 0, err
	}
	if b == nil {
		return 0, nil
	}
	c := b.Limits[limit].Consumed
	if c.FloorDiv(1000) != c.CeilDiv(1000) {
		return 0, fmt.Errorf("%s/%s %s holds %s millitokens, not whole tokens", entity, resource, limit, c)
	}
	return c.FloorDiv(1000), nil
}

// bucketScenario drives commit:true acquires of one token on entity (or, with several entities,
// a random one of them) and checks admitted against l's exact bound.
func bucketScenario(ctx context.Context, e *env, o options, name string, entities []string, boundEntity string, l limitSpec) (*result, error) {
	resource := "model"
	r := drive(ctx, e, o, name, func(ctx context.Context, a *api, rng *rand.Rand, r *scenarioRun) {
		ent := entities[rng.IntN(len(entities))]
		countAcquire(r, a.call(ctx, "POST", "/v1/acquire", acquireBody(ent, resource, l, o.failureMode)))
	})
	res := r.res
	res.Bound = l.bound(res.Elapsed)
	var err error
	if res.Charged, err = charged(ctx, e, boundEntity, resource, l.Name); err != nil {
		return nil, err
	}
	return res, nil
}

func scenarioHot(ctx context.Context, e *env, o options) (*result, error) {
	id := "hot-" + o.runID
	return bucketScenario(ctx, e, o, "hot", []string{id}, id,
		limitSpec{Name: "rpm", Capacity: 500, Amount: 1, PeriodS: 86400})
}

func scenarioRefill(ctx context.Context, e *env, o options) (*result, error) {
	id := "refill-" + o.runID
	return bucketScenario(ctx, e, o, "refill", []string{id}, id,
		limitSpec{Name: "rps", Capacity: o.refillCapacity, Amount: 100, PeriodS: 1})
}

// scenarioCascade shares one parent among 16 children that cascade: the parent's limit is the
// bound, and the children's counters must add up to the parent's.
func scenarioCascade(ctx context.Context, e *env, o options) (*result, error) {
	admin := &api{base: e.url, http: httpClient()}
	parent := "parent-" + o.runID
	if ans := admin.call(ctx, "PUT", "/v1/entities/"+parent, map[string]any{"name": "load parent"}); ans.Status/100 != 2 {
		return nil, fmt.Errorf("create %s: %d %v %v", parent, ans.Status, ans.Body, ans.Err)
	}
	kids := make([]string, 16)
	for i := range kids {
		kids[i] = fmt.Sprintf("child-%s-%d", o.runID, i)
		ans := admin.call(ctx, "PUT", "/v1/entities/"+kids[i], map[string]any{"parent_id": parent, "cascade": true})
		if ans.Status/100 != 2 {
			return nil, fmt.Errorf("create %s: %d %v %v", kids[i], ans.Status, ans.Body, ans.Err)
		}
	}
	l := limitSpec{Name: "tpm", Capacity: 300, Amount: 1, PeriodS: 86400}
	res, err := bucketScenario(ctx, e, o, "cascade", kids, parent, l)
	if err != nil {
		return nil, err
	}
	var sum int64
	for _, k := range kids {
		c, err := charged(ctx, e, k, "model", l.Name)
		if err != nil {
			return nil, err
		}
		sum += c
	}
	if sum != res.Charged {
		res.Problems = append(res.Problems, fmt.Sprintf("children hold %d tokens in all, the parent %d", sum, res.Charged))
	}
	return res, nil
}

// retried sends a call again, up to 8 times, while its answer is ambiguous (5xx, no answer) or
// a 429 contended (nothing written), as the API's contract says a caller may; the calls it
// repeats must be safe to repeat (an acquire with a request id, commit, rollback, an adjust with
// an idempotency key). Each contended answer is counted in r.
func retried(ctx context.Context, r *scenarioRun, f func() answer) answer {
	return retry(ctx, r, true, f)
}

// retry is retried; with ambiguousToo false it sends the call again only after a 429
// contended, for calls that are not safe to repeat (an acquire without a request id).
func retry(ctx context.Context, r *scenarioRun, ambiguousToo bool, f func() answer) answer {
	var ans answer
	for attempt := range 8 {
		if ans = f(); !(ambiguousToo && ans.ambiguous()) && !ans.contended() {
			return ans
		}
		if ans.contended() {
			r.update(func(res *result) { res.Contended++ })
		}
		select {
		case <-ctx.Done():
			return ans
		case <-time.After(ans.retryAfter(time.Duration(attempt+1) * 20 * time.Millisecond)):
		}
	}
	return ans
}

// leaseBody is an acquire of 100 tpm that keeps a lease, idempotent through its request id when
// requestID is not empty (without one, the lease lives in the bucket item while it has room).
func leaseBody(entity, requestID string, l limitSpec, failureMode string) map[string]any {
	body := map[string]any{"entity_id": entity, "resource": "model", "limits": []limitSpec{l},
		"consume": map[string]int64{l.Name: 100}, "lease_ttl_seconds": 600, "failure_mode": failureMode}
	if requestID != "" {
		body["request_id"] = requestID
	}
	return body
}

// scenarioLeases acquires leases (half with a request id), then rolls back 30%, adjusts then
// commits 35% and settles 35% in one call, every call that is safe to repeat retried while
// ambiguous: the table must hold exactly what the settled leases kept.
func scenarioLeases(ctx context.Context, e *env, o options) (*result, error) {
	id := "leases-" + o.runID
	l := limitSpec{Name: "tpm", Capacity: 1_000_000_000, Amount: 1_000_000_000, PeriodS: 60}
	var seq atomic.Int64
	r := drive(ctx, e, o, "leases", func(ctx context.Context, a *api, rng *rand.Rand, r *scenarioRun) {
		// Half the leases carry a request id (an ambiguous acquire is sent again), half none (an
		// ambiguous acquire is not repeated); both live in the bucket item while it has room.
		reqID := ""
		if n := seq.Add(1); n%2 == 0 {
			reqID = fmt.Sprintf("%s-%d", id, n)
		}
		acq := retry(ctx, r, reqID != "", func() answer {
			return a.call(ctx, "POST", "/v1/acquire", leaseBody(id, reqID, l, o.failureMode))
		})
		settleLease(ctx, a, rng, r, acq)
	})
	res := r.res
	var err error
	if res.Charged, err = charged(ctx, e, id, "model", l.Name); err != nil {
		return nil, err
	}
	return res, nil
}

// settleLease books an acquire's answer and settles its lease: 30% rolled back, the rest
// adjusted by −50…+200 and committed.
func settleLease(ctx context.Context, a *api, rng *rand.Rand, r *scenarioRun, acq answer) {
	switch {
	case acq.Status == 200 && acq.Body["degraded"] == true:
		r.update(func(res *result) { res.Degraded++ })
		return
	case acq.Status == 200:
		r.update(func(res *result) { res.Admitted += 100 })
	case acq.ambiguous():
		// A lease may exist that nobody can settle: it stands as committed when it expires.
		r.update(func(res *result) { res.Ledger.maybe(100) })
		return
	default:
		r.problem("lease acquire answered %d: %v %v", acq.Status, acq.Body, acq.Err)
		return
	}
	lease := acq.str("lease_id")
	if rng.IntN(10) < 3 {
		rb := retried(ctx, r, func() answer { return a.call(ctx, "POST", "/v1/leases/"+lease+"/rollback", nil) })
		if rb.Status != 200 {
			r.update(func(res *result) { res.Ledger.maybe(100) })
			if !rb.ambiguous() {
				r.problem("rollback answered %d: %v", rb.Status, rb.Body)
			}
		}
		return
	}
	d := int64(rng.IntN(251) - 50)
	if rng.IntN(2) == 0 {
		// Settle in one write: commit with the real count.
		cm := retried(ctx, r, func() answer {
			return a.call(ctx, "POST", "/v1/leases/"+lease+"/commit", map[string]any{"consumed": map[string]int64{"tpm": 100 + d}})
		})
		switch {
		case cm.Status == 200:
			r.update(func(res *result) { res.Ledger.told(100 + d) })
		case cm.ambiguous():
			// Either settled at 100+d, or still open at 100 and standing as committed.
			r.update(func(res *result) { res.Ledger.told(min(100, 100+d)); res.Ledger.maybe(abs(d)) })
		default:
			r.problem("commit with consumed %d answered %d: %v", 100+d, cm.Status, cm.Body)
		}
		return
	}
	held := int64(100)
	key := lease[max(0, len(lease)-16):] + "-adj"
	adj := retried(ctx, r, func() answer {
		return a.call(ctx, "POST", "/v1/leases/"+lease+"/adjust", map[string]any{"adjust": map[string]int64{"tpm": d}, "idempotency_key": key})
	})
	switch {
	case adj.Status == 200:
		held += d
	case adj.ambiguous():
		r.update(func(res *result) { res.Ledger.maybe(d) })
	default:
		r.problem("adjust %+d answered %d: %v", d, adj.Status, adj.Body)
	}
	// A commit that never gets an answer leaves the lease open; it stands as committed.
	if cm := retried(ctx, r, func() answer { return a.call(ctx, "POST", "/v1/leases/"+lease+"/commit", nil) }); cm.Status != 200 && !cm.ambiguous() {
		r.problem("commit answered %d: %v", cm.Status, cm.Body)
	}
	r.update(func(res *result) { res.Ledger.told(held) })
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
