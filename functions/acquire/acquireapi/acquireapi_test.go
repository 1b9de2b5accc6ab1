package acquireapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// The sample events, in order, through lambda.NewHandler: acquire, adjust, commit; and the
// errors of a settled lease.
func TestEventsLeaseLifecycle(t *testing.T) {
	e := newEnv(t)
	resp := call(t, e.handler, event(t, "acquire.json", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("acquire: %d %s", resp.StatusCode, resp.Body)
	}
	got := decode[httpapi.AcquireResponse](t, resp.Body)
	// A request id, one bucket: the lease lives in the bucket item ("b." ids).
	if !strings.HasPrefix(got.LeaseID, "b.") || got.EntityID != "key-acme-1" || got.Resource != "gpt-4" || got.Degraded ||
		got.Consumed["rpm"] != 1 || got.Consumed["tpm"] != 500 || len(got.Statuses) != 2 {
		t.Fatalf("acquire body: %s", resp.Body)
	}
	if want := e.clock.Now().Add(httpapi.DefaultLeaseTTL); !got.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %s, want %s", got.ExpiresAt, want)
	}
	// An in-item lease is written by one UpdateItem, whose answer carries the bucket: the
	// statuses are exact, and the RateLimit header says what is left.
	if s := got.Statuses[1]; s.LimitName != "tpm" || s.Available != 9500 || s.Requested != 500 || s.Capacity != 10000 || s.Estimated {
		t.Errorf("tpm status %+v", s)
	}
	if p, r := resp.Headers["ratelimit-policy"], resp.Headers["ratelimit"]; p != `"rpm";q=100;w=60, "tpm";q=10000;w=60` || r == "" {
		t.Errorf("RateLimit-Policy %q, RateLimit %q", p, r)
	}

	resp = call(t, e.handler, event(t, "adjust.json", withLease(got.LeaseID)))
	adj := decode[httpapi.LeaseResponse](t, resp.Body)
	if resp.StatusCode != 200 || adj.State != httpapi.LeaseOpen || adj.Consumed["tpm"] != 1250 || len(adj.Statuses) != 2 {
		t.Fatalf("adjust: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["ratelimit"] == "" || adj.Statuses[0].Estimated {
		t.Error("adjust of an in-item lease: one UpdateItem answers it: exact statuses and a RateLimit header")
	}
	if left := e.available("key-acme-1"); left["tpm"] != 8750 {
		t.Fatalf("after adjust: %v", left)
	}

	resp = call(t, e.handler, event(t, "commit.json", withLease(got.LeaseID)))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"state":"committed"`) {
		t.Fatalf("commit: %d %s", resp.StatusCode, resp.Body)
	}
	// Commit is idempotent; rollback after commit is a conflict and changes nothing.
	if resp = call(t, e.handler, event(t, "commit.json", withLease(got.LeaseID))); resp.StatusCode != 200 {
		t.Fatalf("second commit: %d %s", resp.StatusCode, resp.Body)
	}
	resp = call(t, e.handler, event(t, "rollback.json", withLease(got.LeaseID)))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(resp.Body, `"error":"lease_committed"`) {
		t.Fatalf("rollback after commit: %d %s", resp.StatusCode, resp.Body)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 8750 || left["rpm"] != 99 {
		t.Fatalf("rollback after commit changed the bucket: %v", left)
	}
	resp = call(t, e.handler, event(t, "adjust.json", withLease(got.LeaseID)))
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("adjust after commit: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestEventsRollback(t *testing.T) {
	e := newEnv(t)
	// Two different requests (request ids): two leases.
	first := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	second := call(t, e.handler, event(t, "acquire.json", withBody(strings.Replace(event(t, "acquire.json", nil).Body, "0001", "0002", 1))))
	lease := decode[httpapi.AcquireResponse](t, second.Body)
	if lease.LeaseID == first.LeaseID {
		t.Fatal("two request ids gave one lease")
	}
	// Adjust up, then roll back: everything the lease took comes back, once.
	if r := call(t, e.handler, event(t, "adjust.json", withLease(lease.LeaseID))); r.StatusCode != 200 {
		t.Fatalf("adjust: %d %s", r.StatusCode, r.Body)
	}
	for i := range 3 {
		r := call(t, e.handler, event(t, "rollback.json", withLease(lease.LeaseID)))
		if r.StatusCode != 200 || !strings.Contains(r.Body, `"state":"rolled_back"`) {
			t.Fatalf("rollback %d: %d %s", i, r.StatusCode, r.Body)
		}
		if left := e.available("key-acme-1"); left["tpm"] != 9500 || left["rpm"] != 99 {
			t.Fatalf("after rollback %d: %v, want only the first lease's 500 tpm taken", i, left)
		}
	}
	r := call(t, e.handler, event(t, "commit.json", withLease(lease.LeaseID)))
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, `"error":"lease_rolled_back"`) {
		t.Fatalf("commit after rollback: %d %s", r.StatusCode, r.Body)
	}
	// A refund can never exceed what the lease took: giving back more is refused.
	r = call(t, e.handler, event(t, "adjust.json", func(ev *events.APIGatewayV2HTTPRequest) {
		withLease(first.LeaseID)(ev)
		ev.Body = `{"adjust":{"tpm":-501}}`
	}))
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("over-refund: %d %s", r.StatusCode, r.Body)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 9500 {
		t.Fatalf("over-refund changed the bucket: %v", left)
	}
}

// Another execution environment settles a lease made by this one; state is in the table.
func TestLeaseAcrossInstances(t *testing.T) {
	e := newEnv(t)
	_, other := e.newFunction()
	lease := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	if r := call(t, other, event(t, "commit.json", withLease(lease.LeaseID))); r.StatusCode != 200 {
		t.Fatalf("commit elsewhere: %d %s", r.StatusCode, r.Body)
	}
	if r := call(t, e.handler, event(t, "rollback.json", withLease(lease.LeaseID))); r.StatusCode != http.StatusConflict {
		t.Fatalf("rollback here after commit elsewhere: %d %s", r.StatusCode, r.Body)
	}
	// An expired lease is gone.
	lease = decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", withBody(
		`{"entity_id":"k2","resource":"gpt-4","consume":{"rpm":1},"limits":[{"name":"rpm","rate":100,"period":"minute"}],"lease_ttl_seconds":60}`))).Body)
	e.clock.Advance(61 * time.Second)
	for _, name := range []string{"adjust.json", "commit.json", "rollback.json"} {
		r := call(t, other, event(t, name, withLease(lease.LeaseID)))
		if r.StatusCode != http.StatusNotFound || !strings.Contains(r.Body, `"error":"lease_not_found"`) {
			t.Fatalf("%s of an expired lease: %d %s", name, r.StatusCode, r.Body)
		}
	}
}

// A retried acquire with the same request id returns the same lease and consumes once.
func TestIdempotentRequestID(t *testing.T) {
	e := newEnv(t)
	a := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	_, other := e.newFunction()
	r := call(t, other, event(t, "acquire.json", nil))
	b := decode[httpapi.AcquireResponse](t, r.Body)
	if r.StatusCode != 200 || b.LeaseID != a.LeaseID || b.Consumed["tpm"] != 500 {
		t.Fatalf("retry: %d %s; first lease %s", r.StatusCode, r.Body, a.LeaseID)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 9500 || left["rpm"] != 99 {
		t.Fatalf("retry consumed again: %v", left)
	}
}

func TestRateLimited(t *testing.T) {
	e := newEnv(t)
	body := `{"entity_id":"k","resource":"gpt-4","consume":{"rpm":2},"limits":[{"name":"rpm","rate":3,"period":"minute"}]}`
	if r := call(t, e.handler, event(t, "acquire.json", withBody(body))); r.StatusCode != 200 {
		t.Fatalf("first: %d %s", r.StatusCode, r.Body)
	}
	r := call(t, e.handler, event(t, "acquire.json", withBody(body)))
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second: %d %s", r.StatusCode, r.Body)
	}
	rl := decode[httpapi.RateLimitExceeded](t, r.Body)
	// 1 token left, 2 wanted at 3/min: 20 s.
	if rl.Error != "rate_limit_exceeded" || rl.RetryAfterMs != 20000 || len(rl.Limits) != 1 || !rl.Limits[0].Exceeded || rl.Limits[0].Available != 1 {
		t.Fatalf("429 body %s", r.Body)
	}
	if r.Headers["retry-after"] != "20" || r.Headers["ratelimit"] != `"rpm";r=1;t=40` || r.Headers["ratelimit-policy"] != `"rpm";q=3;w=60` {
		t.Fatalf("429 headers %v", r.Headers)
	}
}

// Bad input of every kind: a 4xx with a JSON error, nothing written, never a 500.
func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	good := `{"entity_id":"k","resource":"r","consume":{"rpm":1},"limits":[{"name":"rpm","rate":10,"period":"minute"}]}`
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = fmt.Sprintf(`{"name":"l%d","rate":1,"period":"minute"}`, i)
	}
	cases := []struct {
		name, event, body string
		lease             string
		status            int
		code              string
	}{
		{"malformed JSON", "acquire.json", `{"entity_id":`, "", 400, "invalid_request"},
		{"not an object", "acquire.json", `[1]`, "", 400, "invalid_request"},
		{"empty body", "acquire.json", ``, "", 400, "invalid_request"},
		{"unknown member", "acquire.json", strings.Replace(good, `"resource"`, `"colour":"red","resource"`, 1), "", 400, "invalid_request"},
		{"missing entity", "acquire.json", strings.Replace(good, `"entity_id":"k",`, ``, 1), "", 400, "invalid_request"},
		{"missing consume", "acquire.json", `{"entity_id":"k","resource":"r","limits":[{"name":"rpm","rate":1,"period":"minute"}]}`, "", 400, "invalid_request"},
		{"missing limits", "acquire.json", `{"entity_id":"k","resource":"r","consume":{"rpm":1}}`, "", 400, "invalid_request"},
		{"negative consume", "acquire.json", strings.Replace(good, `"rpm":1`, `"rpm":-1`, 1), "", 400, "invalid_request"},
		{"consume of a limit not given", "acquire.json", strings.Replace(good, `"consume":{"rpm":1}`, `"consume":{"tpm":1}`, 1), "", 400, "invalid_request"},
		{"more than capacity", "acquire.json", strings.Replace(good, `"rpm":1}`, `"rpm":11}`, 1), "", 400, "invalid_request"},
		{"17 limits", "acquire.json", `{"entity_id":"k","resource":"r","consume":{"l0":1},"limits":[` + strings.Join(seventeen, ",") + `]}`, "", 400, "invalid_request"},
		{"body over 64 KB", "acquire.json", strings.Replace(good, `"k"`, `"`+strings.Repeat("k", 70_000)+`"`, 1), "", 413, "payload_too_large"},
		{"id with #", "acquire.json", strings.Replace(good, `"k"`, `"k#1"`, 1), "", 400, "invalid_request"},
		{"id with space", "acquire.json", strings.Replace(good, `"r"`, `"r 1"`, 1), "", 400, "invalid_request"},
		{"id too long", "acquire.json", strings.Replace(good, `"k"`, `"`+strings.Repeat("k", 257)+`"`, 1), "", 400, "invalid_request"},
		{"reserved resource", "acquire.json", strings.Replace(good, `"r"`, `"_default_"`, 1), "", 400, "invalid_request"},
		{"bad period", "acquire.json", strings.Replace(good, `"minute"`, `"fortnight"`, 1), "", 400, "invalid_request"},
		{"bad cascade", "acquire.json", strings.Replace(good, `"resource"`, `"cascade":"yes","resource"`, 1), "", 400, "invalid_request"},
		{"bad failure mode", "acquire.json", strings.Replace(good, `"resource"`, `"failure_mode":"open","resource"`, 1), "", 400, "invalid_request"},
		{"float consume", "acquire.json", strings.Replace(good, `"rpm":1}`, `"rpm":1.5}`, 1), "", 400, "invalid_request"},
		{"unknown lease", "commit.json", ``, "0123456789abcdef0123456789abcdef", 404, "lease_not_found"},
		{"malformed lease id", "rollback.json", ``, "not-a-lease", 404, "lease_not_found"},
		{"unknown lease adjust", "adjust.json", `{"adjust":{"tpm":1}}`, "0123456789abcdef0123456789abcdef", 404, "lease_not_found"},
		{"adjust without amounts", "adjust.json", `{"adjust":{}}`, "0123456789abcdef0123456789abcdef", 400, "invalid_request"},
		{"commit with a body", "commit.json", `{"force":true}`, "0123456789abcdef0123456789abcdef", 400, "invalid_request"},
		{"available without ids", "available.json", `{"limits":[{"name":"a","rate":1,"period":"minute"}]}`, "", 400, "invalid_request"},
		{"needed over capacity", "time-until-available.json", `{"entity_id":"k","resource":"r","limits":[{"name":"a","rate":1,"period":"minute"}],"needed":{"a":2}}`, "", 400, "invalid_request"},
	}
	e.meter.Reset()
	for _, c := range cases {
		ev := event(t, c.event, withBody(c.body))
		if c.lease != "" {
			withLease(c.lease)(&ev)
		}
		r := call(t, e.handler, ev)
		var body httpapi.ErrorBody
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Errorf("%s: body %.200s is not JSON", c.name, r.Body)
		}
		if r.StatusCode != c.status || body.Error != c.code {
			t.Errorf("%s: got %d %.300s, want %d %s", c.name, r.StatusCode, r.Body, c.status, c.code)
		}
	}
	// Routing errors.
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/v1/acquire", 405}, {"POST", "/v1/acquire/x", 404}, {"POST", "/v1/leases/x/extend", 404}, {"DELETE", "/v1/leases/x/commit", 405}} {
		r := call(t, e.handler, event(t, "acquire.json", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.HTTP.Method, ev.RawPath = c.method, c.path
		}))
		if r.StatusCode != c.status {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.StatusCode, r.Body)
		}
	}
	if n := e.writes(); n != 0 {
		t.Fatalf("bad input wrote %d times: %v", n, e.meter.Snapshot())
	}
}

func TestFailureModes(t *testing.T) {
	e := newEnv(t)
	e.faults.Fail("", -1, nil)
	r := call(t, e.handler, event(t, "acquire.json", nil))
	if r.StatusCode != http.StatusServiceUnavailable || r.Body != `{"error":"limiter_unavailable","message":"the limiter's storage could not be reached; retry later"}` {
		t.Fatalf("fail closed: %d %s", r.StatusCode, r.Body)
	}
	r = call(t, e.handler, event(t, "acquire.json", withBody(strings.Replace(event(t, "acquire.json", nil).Body, "fail_closed", "fail_open", 1))))
	got := decode[httpapi.AcquireResponse](t, r.Body)
	if r.StatusCode != 200 || !got.Degraded || len(got.Consumed) != 0 || !got.ExpiresAt.IsZero() {
		t.Fatalf("fail open: %d %s", r.StatusCode, r.Body)
	}
	if _, ok := r.Headers["ratelimit"]; ok {
		t.Errorf("a degraded lease has no statuses to report: %v", r.Headers)
	}
	// The other routes fail closed too.
	for _, name := range []string{"available.json", "time-until-available.json", "commit.json"} {
		if r := call(t, e.handler, event(t, name, nil)); r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.Body)
		}
	}
}

// With cascade absent the entity's stored setting applies: the parent is charged too.
func TestCascade(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.seed.CreateEntity(ctx, limiter.Entity{ID: "org-acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.seed.CreateEntity(ctx, limiter.Entity{ID: "key-acme-1", ParentID: "org-acme", Cascade: true}); err != nil {
		t.Fatal(err)
	}
	r := call(t, e.handler, event(t, "acquire.json", nil))
	got := decode[httpapi.AcquireResponse](t, r.Body)
	if r.StatusCode != 200 || len(got.Statuses) != 4 || got.Statuses[2].EntityID != "org-acme" {
		t.Fatalf("cascade by default: %d %s", r.StatusCode, r.Body)
	}
	if !strings.Contains(r.Headers["ratelimit-policy"], `"parent:tpm";q=10000`) || got.Statuses[3].Available != 9500 || !got.Statuses[3].Estimated {
		t.Errorf("RateLimit-Policy %q, parent tpm %+v", r.Headers["ratelimit-policy"], got.Statuses[3])
	}
	// cascade: false overrides the stored setting.
	body := strings.Replace(strings.Replace(event(t, "acquire.json", nil).Body, `"request_id"`, `"cascade":false,"request_id"`, 1), "0001", "0003", 1)
	got = decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", withBody(body))).Body)
	if len(got.Statuses) != 2 {
		t.Fatalf("cascade false: %+v", got.Statuses)
	}
	// Rollback of a cascaded lease refunds both levels.
	first := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	if r := call(t, e.handler, event(t, "rollback.json", withLease(first.LeaseID))); r.StatusCode != 200 {
		t.Fatal(r.Body)
	}
	if left := e.available("org-acme"); left["tpm"] != 10000 {
		t.Fatalf("parent after rollback: %v", left)
	}
}

func TestAvailability(t *testing.T) {
	e := newEnv(t)
	call(t, e.handler, event(t, "acquire.json", nil))
	r := call(t, e.handler, event(t, "available.json", nil))
	if r.StatusCode != 200 || r.Body != `{"available":{"rpm":99,"tpm":9500}}` {
		t.Fatalf("available: %d %s", r.StatusCode, r.Body)
	}
	// 2000 tpm are there: no wait. 9600 need 100 more at 10000/min: 600 ms.
	r = call(t, e.handler, event(t, "time-until-available.json", nil))
	if r.StatusCode != 200 || r.Body != `{"retry_after_seconds":0,"retry_after_ms":0}` {
		t.Fatalf("time until available: %d %s", r.StatusCode, r.Body)
	}
	r = call(t, e.handler, event(t, "time-until-available.json", withBody(strings.Replace(event(t, "time-until-available.json", nil).Body, `"tpm":2000`, `"tpm":9600`, 1))))
	if r.StatusCode != 200 || r.Body != `{"retry_after_seconds":0.6,"retry_after_ms":600}` {
		t.Fatalf("time until available: %d %s", r.StatusCode, r.Body)
	}
}

// The direct payloads answer what the API Gateway events answer, through the same handler.
func TestDirectInvocation(t *testing.T) {
	e := newEnv(t)
	r := direct(t, e.handler, readEvent(t, "direct-acquire.json"))
	got := decode[httpapi.AcquireResponse](t, string(r.Body))
	if r.Status != 200 || got.Consumed["tpm"] != 500 {
		t.Fatalf("direct acquire: %d %s", r.Status, r.Body)
	}
	// Row 11: request ids are scoped to the caller. Through API Gateway the IAM principal is
	// another caller than a direct invocation (which carries none): the same request id is
	// another acquire, and the direct caller's lease (whose id settles it) is not handed out.
	first := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	if first.LeaseID == "" || first.LeaseID == got.LeaseID || first.LeaseID[:64] == got.LeaseID[:64] {
		t.Fatalf("event and direct acquire with one request id: %s vs %s", first.LeaseID, got.LeaseID)
	}
	// The same principal replaying gets its own lease back; another principal does not.
	if again := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body); again.LeaseID != first.LeaseID {
		t.Fatalf("replay by the same principal: %s, want %s", again.LeaseID, first.LeaseID)
	}
	other := event(t, "acquire.json", nil)
	other.RequestContext.Authorizer.IAM.UserARN = "arn:aws:iam::123456789012:user/someone-else"
	if stranger := decode[httpapi.AcquireResponse](t, call(t, e.handler, other).Body); stranger.LeaseID == first.LeaseID || stranger.LeaseID[65:] == first.LeaseID[65:] {
		t.Fatalf("another principal replaying the request id got %s (first %s)", stranger.LeaseID, first.LeaseID)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 8500 {
		t.Fatalf("three acquires of 500 by three callers: %v left, want 8500", left)
	}
	for _, pair := range [][2]string{{"direct-available.json", "available.json"}, {"direct-time-until-available.json", "time-until-available.json"}} {
		d := direct(t, e.handler, readEvent(t, pair[0]))
		ev := call(t, e.handler, event(t, pair[1], nil))
		if d.Status != ev.StatusCode || string(d.Body) != ev.Body {
			t.Errorf("%s: %d %s; %s: %d %s", pair[0], d.Status, d.Body, pair[1], ev.StatusCode, ev.Body)
		}
	}
	lease := []byte(strings.ReplaceAll(string(readEvent(t, "direct-adjust.json")), sampleLease, got.LeaseID))
	if d := direct(t, e.handler, lease); d.Status != 200 || !strings.Contains(string(d.Body), `"tpm":1250`) {
		t.Fatalf("direct adjust: %d %s", d.Status, d.Body)
	}
	rollback := []byte(strings.ReplaceAll(string(readEvent(t, "direct-rollback.json")), sampleLease, got.LeaseID))
	if d := direct(t, e.handler, rollback); d.Status != 200 {
		t.Fatalf("direct rollback: %d %s", d.Status, d.Body)
	}
	commit := []byte(strings.ReplaceAll(string(readEvent(t, "direct-commit.json")), sampleLease, got.LeaseID))
	if d := direct(t, e.handler, commit); d.Status != http.StatusConflict || !strings.Contains(string(d.Body), "lease_rolled_back") {
		t.Fatalf("direct commit after rollback: %d %s", d.Status, d.Body)
	}
	for _, bad := range []string{`{"action":"delete_entity","entity_id":"k"}`, `{"action":"commit"}`, `{"action":"commit","lease_id":"x","extra":1}`} {
		if d := direct(t, e.handler, []byte(bad)); d.Status/100 != 4 {
			t.Errorf("%s: %d %s", bad, d.Status, d.Body)
		}
	}
}

// commit: true takes tokens for good in one conditional write, with no lease.
func TestCommittedAcquire(t *testing.T) {
	e := newEnv(t)
	e.meter.Reset()
	body := `{"entity_id":"k","resource":"gpt-4","consume":{"rpm":1},"limits":[{"name":"rpm","rate":100,"period":"minute"}],"commit":true}`
	r := call(t, e.handler, event(t, "acquire.json", withBody(body)))
	got := decode[httpapi.AcquireResponse](t, r.Body)
	if r.StatusCode != 200 || got.LeaseID != "" || !got.Committed || !got.ExpiresAt.IsZero() || got.Consumed["rpm"] != 1 {
		t.Fatalf("committed acquire: %d %s", r.StatusCode, r.Body)
	}
	if s := e.meter.Snapshot(); s["UpdateItem"].Requests != 1 || s["TransactWriteItems"].Requests != 0 {
		t.Errorf("requests %v, want one UpdateItem", s)
	}
}

// The acquire function's role may write buckets and leases only; its Limiter interface has no
// entity or limit writes at all.
func TestLimiterInterfaceReadsAndLeasesOnly(t *testing.T) {
	allowed := map[string]bool{"Acquire": true, "Lease": true, "Available": true, "TimeUntilAvailable": true}
	it := reflect.TypeFor[acquireapi.Limiter]()
	for i := range it.NumMethod() {
		if m := it.Method(i).Name; !allowed[m] {
			t.Errorf("acquireapi.Limiter has %s", m)
		}
	}
}

// The IAM guard of these tests does refuse what the acquire role may not do.
func TestIAMGuardRefusesEntityWrites(t *testing.T) {
	e := newEnv(t)
	if _, err := e.lim.CreateEntity(context.Background(), limiter.Entity{ID: "x"}); err == nil {
		t.Fatal("the guard let an entity write through")
	}
	if err := e.lim.SetLimits(context.Background(), limiter.SystemDefault(), sampleLimits); err == nil {
		t.Fatal("the guard let a limits write through")
	}
	if v := e.guard.Violations(); len(v) != 2 {
		t.Fatalf("violations %v", v)
	}
	e.guard.Reset()
}

// Row 1 over HTTP: two identical refunds of one lease, each request loading it afresh, both
// apply; a refund sent twice with one idempotency_key applies once; an adjust of zeros is a
// 200 that changes nothing (row 9).
func TestAdjustRefundsAndKeys(t *testing.T) {
	e := newEnv(t)
	got := decode[httpapi.AcquireResponse](t, call(t, e.handler, event(t, "acquire.json", nil)).Body)
	adjust := func(body string) httpapi.LeaseResponse {
		t.Helper()
		ev := event(t, "adjust.json", withLease(got.LeaseID))
		withBody(body)(&ev)
		r := call(t, e.handler, ev)
		if r.StatusCode != 200 {
			t.Fatalf("adjust %s: %d %s", body, r.StatusCode, r.Body)
		}
		return decode[httpapi.LeaseResponse](t, r.Body)
	}
	adjust(`{"adjust":{"tpm":-100}}`)
	if out := adjust(`{"adjust":{"tpm":-100}}`); out.Consumed["tpm"] != 300 {
		t.Fatalf("two refunds: the lease holds %v, want tpm 300", out.Consumed)
	}
	for range 2 {
		if out := adjust(`{"adjust":{"tpm":-50},"idempotency_key":"refund-1"}`); out.Consumed["tpm"] != 250 {
			t.Fatalf("keyed refund: the lease holds %v, want tpm 250 (once)", out.Consumed)
		}
	}
	if out := adjust(`{"adjust":{"tpm":0}}`); out.Consumed["tpm"] != 250 {
		t.Fatalf("zero adjust: %v", out.Consumed)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 9750 {
		t.Fatalf("bucket after refunds: %v, want 9750", left)
	}
	ev := event(t, "adjust.json", withLease(got.LeaseID))
	withBody(`{"adjust":{"tpm":1},"idempotency_key":"bad#key"}`)(&ev)
	if r := call(t, e.handler, ev); r.StatusCode != 400 || !strings.Contains(r.Body, "idempotency_key") {
		t.Fatalf("bad key: %d %s", r.StatusCode, r.Body)
	}
	ev = event(t, "rollback.json", withLease(got.LeaseID))
	withBody(`{"idempotency_key":"end-1"}`)(&ev)
	for range 2 {
		if r := call(t, e.handler, ev); r.StatusCode != 200 {
			t.Fatalf("rollback with a key: %d %s", r.StatusCode, r.Body)
		}
	}
	if left := e.available("key-acme-1"); left["tpm"] != 10_000 {
		t.Fatalf("after rollback: %v", left)
	}
}

// Rows 4 and 5 over HTTP: 64 clients (8 function instances) acquiring stored leases on one
// bucket, half failing open, get 200s and 429s only: never a 5xx, never a degraded lease, and
// the bucket holds exactly what was granted.
func TestHotBucketOverHTTP(t *testing.T) {
	e := newEnv(t)
	handlers := make([]lambda.Handler, 8)
	for i := range handlers {
		_, handlers[i] = e.newFunction()
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	granted := int64(0)
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				mode := "fail_closed"
				if c%2 == 0 {
					mode = "fail_open"
				}
				body := fmt.Sprintf(`{"entity_id":"hot","resource":"gpt-4","consume":{"rpm":1},"limits":[{"name":"rpm","rate":100,"period":"minute"}],"failure_mode":%q,"request_id":"c%d-%d"}`, mode, c, i)
				r := call(t, handlers[c%len(handlers)], event(t, "acquire.json", withBody(body)))
				mu.Lock()
				statuses[r.StatusCode]++
				if r.StatusCode == 200 {
					if strings.Contains(r.Body, `"degraded":true`) {
						statuses[-1]++
					}
					granted++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses %v", statuses)
	if statuses[200]+statuses[429] != 64*3 || statuses[-1] != 0 {
		t.Fatalf("statuses %v: want only 200 and 429, no degraded lease", statuses)
	}
	if left := e.available("hot"); granted > 100 || left["rpm"] != 100-granted {
		t.Fatalf("granted %d, bucket %v: want exactly the grants taken, at most 100", granted, left)
	}
}

// Acquire with an estimate, commit with the real count: one write settles the lease; a repeat
// is a 200, a repeat with another count a 409; a rollback cannot keep anything.
// The LLM flow over HTTP: acquire with an estimate, commit with the real count. The lease lives
// in the bucket item: 2 UpdateItems in all, no read, 1 WCU each (as DynamoDB Local reports).
// With a request_id (what the Go client sends on every acquire) the same: the lease is in the
// bucket item under the request's key, and a retried acquire replays it.
func TestCommitWithConsumed(t *testing.T) {
	for _, requestID := range []string{"", "9b2f6c1e-4a8d-4f3e-b1c7-2d5e8a9f0c13"} {
		t.Run("request_id="+requestID, func(t *testing.T) { testCommitWithConsumed(t, requestID) })
	}
}

func testCommitWithConsumed(t *testing.T, requestID string) {
	e := newEnv(t)
	body := `{"entity_id":"key-acme-1","resource":"gpt-4","consume":{"rpm":1,"tpm":500},` +
		`"limits":[{"name":"rpm","rate":100,"period":"minute"},{"name":"tpm","capacity":10000,"refill_amount":10000,"refill_period_seconds":60}]`
	call(t, e.handler, event(t, "acquire.json", withBody(body+"}"))) // create the bucket
	if requestID != "" {
		body += `,"request_id":"` + requestID + `"`
	}
	acquire := event(t, "acquire.json", withBody(body+"}"))
	e.meter.Reset()
	got := decode[httpapi.AcquireResponse](t, call(t, e.handler, acquire).Body)
	if !strings.HasPrefix(got.LeaseID, "b.") {
		t.Fatalf("lease %s is not kept in its bucket item", got.LeaseID)
	}
	commit := func(body string) events.APIGatewayV2HTTPResponse {
		ev := event(t, "commit.json", withLease(got.LeaseID))
		withBody(body)(&ev)
		return call(t, e.handler, ev)
	}
	writes := e.writes()
	r := commit(`{"consumed":{"tpm":1250}}`)
	if r.StatusCode != 200 || !strings.Contains(r.Body, `"state":"committed"`) || !strings.Contains(r.Body, `"tpm":1250`) {
		t.Fatalf("commit with consumed: %d %s", r.StatusCode, r.Body)
	}
	if n := e.writes() - writes; n != 1 {
		t.Fatalf("commit with consumed made %d writes, want 1", n)
	}
	if u := e.meter.Total(); u.Requests != 2 || u.TableRCU != 0 || u.TableWCU != 2 {
		t.Fatalf("acquire + commit with consumed: %+v, want 2 requests, 0 RCU, 2 WCU", u)
	}
	for _, bad := range []string{"b.", "b.e30", got.LeaseID + "x"} {
		if r := call(t, e.handler, func() events.APIGatewayV2HTTPRequest {
			ev := event(t, "commit.json", withLease(bad))
			withBody(`{"consumed":{"tpm":1}}`)(&ev)
			return ev
		}()); r.StatusCode != 400 || !strings.Contains(r.Body, "invalid_request") {
			t.Fatalf("commit of lease %q: %d %s, want 400 invalid_request", bad, r.StatusCode, r.Body)
		}
	}
	if left := e.available("key-acme-1"); left["tpm"] != 8250 || left["rpm"] != 98 {
		t.Fatalf("after commit with consumed: %v (want 10000 - 500 - 1250 tpm, 2 requests)", left)
	}
	if requestID != "" {
		// The acquire retried (its answer lost, say): the settled lease, nothing charged.
		again := decode[httpapi.AcquireResponse](t, call(t, e.handler, acquire).Body)
		if again.Consumed["tpm"] != 1250 || !strings.HasPrefix(again.LeaseID, "b.") {
			t.Fatalf("acquire retried after the commit: %+v", again)
		}
		if left := e.available("key-acme-1"); left["tpm"] != 8250 || left["rpm"] != 98 {
			t.Fatalf("the retried acquire charged again: %v", left)
		}
	}
	if r := commit(`{"consumed":{"tpm":1250}}`); r.StatusCode != 200 {
		t.Fatalf("repeat: %d %s", r.StatusCode, r.Body)
	}
	if r := commit(`{"consumed":{"tpm":1}}`); r.StatusCode != 409 {
		t.Fatalf("repeat with another count: %d %s", r.StatusCode, r.Body)
	}
	ev := event(t, "rollback.json", withLease(got.LeaseID))
	withBody(`{"consumed":{"tpm":1}}`)(&ev)
	if r := call(t, e.handler, ev); r.StatusCode != 400 {
		t.Fatalf("rollback with consumed: %d %s", r.StatusCode, r.Body)
	}
	if left := e.available("key-acme-1"); left["tpm"] != 8250 {
		t.Fatalf("bucket changed by refused calls: %v", left)
	}
}
