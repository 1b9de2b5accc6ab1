package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// scenarioRestart opens leases, kills the stack (SIGKILL, as a Lambda sandbox dies) while
// adjustments of every lease are in flight, starts a new stack process, and settles every lease
// from it: even leases rolled back, odd ones committed. The table must hold exactly what the
// committed leases kept, within what the cut adjustments may have added.
func scenarioRestart(ctx context.Context, e *env, o options) (*result, error) {
	rec := newRecorder()
	a := (&api{base: e.url, http: httpClient()}).withRecorder(rec)
	id := "crash-" + o.runID
	l := limitSpec{Name: "tpm", Capacity: 1_000_000_000, Amount: 1_000_000_000, PeriodS: 60}
	n := max(8, min(o.clients, 64))
	res := &result{Name: "restart", Clients: n, Bound: -1, Injected: true}
	begin := time.Now()
	leases := make([]string, n)
	for i := range leases {
		ans := retried(ctx, nil, func() answer {
			return a.call(ctx, "POST", "/v1/acquire", leaseBody(id, fmt.Sprintf("%s-%d", id, i), l, "fail_closed"))
		})
		if ans.Status != 200 {
			return nil, fmt.Errorf("restart: acquire %d answered %d: %v %v", i, ans.Status, ans.Body, ans.Err)
		}
		leases[i] = ans.str("lease_id")
		res.Admitted += 100
	}
	// Adjust every lease by +50 at once; kill the stack when half have answered.
	adjusted := make([]answer, n)
	var answered atomic.Int64
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for i := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			adjusted[i] = a.call(ctx, "POST", "/v1/leases/"+leases[i]+"/adjust", map[string]any{"adjust": map[string]int64{"tpm": 50}})
			if answered.Add(1) == int64(n/2) {
				e.stack.kill()
				close(killed)
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		e.stack.kill()
	}
	if err := e.stack.start(ctx); err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	cut := 0
	for i, lease := range leases {
		held := int64(100)
		switch adj := adjusted[i]; {
		case adj.Status == 200:
			held += 50
		case adj.ambiguous():
			cut++
		default:
			res.Problems = append(res.Problems, fmt.Sprintf("adjust answered %d: %v", adj.Status, adj.Body))
		}
		action := "commit"
		if i%2 == 0 {
			action = "rollback"
		}
		ans := retried(ctx, nil, func() answer { return a.call(ctx, "POST", "/v1/leases/"+lease+"/"+action, nil) })
		if ans.Status != 200 {
			return nil, fmt.Errorf("restart: %s of lease %d after the restart answered %d: %v %v", action, i, ans.Status, ans.Body, ans.Err)
		}
		if action == "commit" {
			res.Ledger.told(held)
			if adjusted[i].ambiguous() {
				res.Ledger.maybe(50)
			}
		}
	}
	res.Elapsed = time.Since(begin)
	res.Statuses, res.Requests = rec.snapshot()
	res.P50, res.P99 = rec.percentile(50), rec.percentile(99)
	res.Faults = fmt.Sprintf("stack killed with %d of %d adjusts unanswered", cut, n)
	var err error
	if res.Charged, err = charged(ctx, e, id, "model", l.Name); err != nil {
		return nil, err
	}
	return res, nil
}

// badInput is one malformed request and the statuses acceptable for it.
type badInput struct {
	name, method, path, body string
}

// badInputs are requests a careless or hostile caller sends. Each must be answered 4xx with a
// JSON error body, and none may change what is stored.
func badInputs(entity string) []badInput {
	acq := func(body string) badInput { return badInput{"", "POST", "/v1/acquire", body} }
	limit := `"limits":[{"name":"rpm","capacity":10,"refill_amount":10,"refill_period_seconds":60}]`
	cases := []badInput{
		acq(`not json`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1}` + `,` + limit + `,"x":1}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":-1},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1e30},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":"1"},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"tpm":1},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1},"limits":[{"name":"rpm","capacity":0,"refill_amount":0,"refill_period_seconds":0}]}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1},"limits":[{"name":"rpm","capacity":10,"refill_amount":10,"refill_period_seconds":1e40}]}`),
		acq(`{"entity_id":"","resource":"m","consume":{"rpm":1},` + limit + `}`),
		acq(`{"entity_id":"ключ-🔑","resource":"m","consume":{"rpm":1},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"_default_","consume":{"rpm":1},` + limit + `}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1},` + limit + `,"lease_ttl_seconds":-5}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1},` + limit + `,"failure_mode":"maybe"}`),
		acq(`{"entity_id":"` + entity + `","resource":"m","consume":{"rpm":1},` + limit + `,"commit":true,"request_id":"r"}`),
		acq(`{"entity_id":"` + entity + `","entity_id":"other","resource":"m","consume":{"rpm":1},` + limit + `}`),
		acq(`[` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `]`),
		acq(`{"entity_id":"` + strings.Repeat("k", 100_000) + `","resource":"m","consume":{"rpm":1},` + limit + `}`),
		acq(strings.Repeat(" ", 2<<20) + `{}`),
		{"", "POST", "/v1/leases/not-a-lease/commit", ``},
		{"", "POST", "/v1/leases/" + strings.Repeat("0", 32) + "/rollback", ``},
		{"", "POST", "/v1/leases/" + strings.Repeat("0", 32) + "/adjust", `{"adjust":{"rpm":1}}`},
		{"", "POST", "/v1/leases/" + strings.Repeat("0", 32) + "/explode", ``},
		{"", "POST", "/v1/available", `{"entity_id":"` + entity + `"}`},
		{"", "POST", "/v1/time-until-available", `{"entity_id":"` + entity + `","resource":"m",` + limit + `,"consume":{"rpm":1000}}`},
		{"", "PUT", "/v1/entities/" + entity + "-x", `{"parent_id":"` + entity + `-x"}`},
		{"", "PUT", "/v1/entities/%E2%9C%93%00", `{}`},
		{"", "PUT", "/v1/entities/" + entity + "/limits/m", `{"limits":[{"name":"rpm","rate":-1,"period":"minute"}]}`},
		{"", "GET", "/v1/entities/" + entity + "/usage?window=weekly", ``},
		{"", "GET", "/v1/entities/" + entity + "/usage?window=hourly&next_token=garbage", ``},
		{"", "DELETE", "/v1/acquire", ``},
	}
	for i := range cases {
		cases[i].name = fmt.Sprintf("%s %s #%d", cases[i].method, cases[i].path, i)
	}
	return cases
}

// scenarioBadInput sends every bad input against a sentinel bucket and checks the answers are
// 4xx with a JSON error and that the bucket, the entity and its stored limits are unchanged.
func scenarioBadInput(ctx context.Context, e *env, o options) (*result, error) {
	rec := newRecorder()
	a := (&api{base: e.url, http: httpClient()}).withRecorder(rec)
	entity := "bad-" + o.runID
	l := limitSpec{Name: "rpm", Capacity: 10, Amount: 10, PeriodS: 60}
	if ans := a.call(ctx, "POST", "/v1/acquire", acquireBody(entity, "m", l, "fail_closed")); ans.Status != 200 {
		return nil, fmt.Errorf("bad-input sentinel acquire: %d %v %v", ans.Status, ans.Body, ans.Err)
	}
	if ans := a.call(ctx, "PUT", "/v1/entities/"+entity, map[string]any{"name": "sentinel"}); ans.Status/100 != 2 {
		return nil, fmt.Errorf("bad-input sentinel entity: %d %v %v", ans.Status, ans.Body, ans.Err)
	}
	rec = newRecorder()
	a = a.withRecorder(rec)
	table := storage.New(e.direct, e.table)
	before, err := table.GetBucket(ctx, entity, "m")
	if err != nil {
		return nil, err
	}
	entBefore, err := table.GetEntity(ctx, entity)
	if err != nil {
		return nil, err
	}
	res := &result{Name: "bad input", Clients: 1, Bound: -1}
	begin := time.Now()
	for _, c := range badInputs(entity) {
		ans := a.raw(ctx, c.method, c.path, strings.NewReader(c.body))
		switch {
		case ans.Status < 400 || ans.Status >= 500:
			res.Problems = append(res.Problems, fmt.Sprintf("%s answered %d (%v)", c.name, ans.Status, ans.Err))
		case ans.Err != nil || (ans.str("error") == "" && ans.str("message") == ""):
			// API Gateway answers a path no route matches with {"message":"Not Found"}.
			res.Problems = append(res.Problems, fmt.Sprintf("%s answered %d without a JSON error body", c.name, ans.Status))
		}
	}
	res.Elapsed = time.Since(begin)
	res.Statuses, res.Requests = rec.snapshot()
	res.P50, res.P99 = rec.percentile(50), rec.percentile(99)
	after, err := table.GetBucket(ctx, entity, "m")
	if err != nil {
		return nil, err
	}
	entAfter, err := table.GetEntity(ctx, entity)
	if err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(before, after) {
		res.Problems = append(res.Problems, fmt.Sprintf("the sentinel bucket changed: %+v → %+v", before, after))
	}
	if !reflect.DeepEqual(entBefore, entAfter) {
		res.Problems = append(res.Problems, fmt.Sprintf("the sentinel entity changed: %+v → %+v", entBefore, entAfter))
	}
	res.Faults = fmt.Sprintf("%d bad inputs", len(badInputs(entity)))
	return res, nil
}
