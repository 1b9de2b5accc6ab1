package adminapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type env struct {
	t       *testing.T
	lim     *limiter.Limiter
	handler lambda.Handler
	meter   *ddbtest.Meter
}

func newEnv(t *testing.T) *env {
	meter := ddbtest.NewMeter()
	client := ddbtest.Client(t, meter.Option())
	table := ddbtest.NewTable(t, client).Name()
	quiet := slog.New(slog.DiscardHandler)
	lim := limiter.New(client, table, limiter.WithLogger(quiet))
	return &env{t: t, lim: lim, handler: lambda.NewHandler(adminapi.New(lim, quiet)), meter: meter}
}

// event reads a sample event of events/admin; edits, when given, change it.
func event(t *testing.T, name string, edits ...func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "admin", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		e(&ev)
	}
	return ev
}

func body(s string) func(*events.APIGatewayV2HTTPRequest) {
	return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = s }
}

func path(method, p string) func(*events.APIGatewayV2HTTPRequest) {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.HTTP.Method, ev.RawPath, ev.RequestContext.HTTP.Path = method, p, p
	}
}

func (e *env) call(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	payload, _ := json.Marshal(ev)
	out, err := e.handler.Invoke(context.Background(), payload)
	if err != nil {
		e.t.Fatalf("invoke: %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		e.t.Fatalf("answer %s: %v", out, err)
	}
	return resp
}

// expect calls and checks the status and that the body contains want.
func (e *env) expect(ev events.APIGatewayV2HTTPRequest, status int, want string) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	r := e.call(ev)
	if r.StatusCode != status || !strings.Contains(r.Body, want) {
		e.t.Fatalf("%s %s: got %d %s; want %d with %s", ev.RequestContext.HTTP.Method, ev.RawPath, r.StatusCode, r.Body, status, want)
	}
	return r
}

func TestEntityEvents(t *testing.T) {
	e := newEnv(t)
	r := e.expect(event(t, "put-entity.json"), 201, `"id":"org-acme","name":"Acme Corp","cascade":false,"metadata":{"plan":"enterprise"}`)
	if r.Headers["location"] != "/v1/entities/org-acme" {
		t.Errorf("Location %q", r.Headers["location"])
	}
	// PUT of an existing entity updates it: 200.
	e.expect(event(t, "put-entity.json", body(`{"name":"Acme Inc"}`)), 200, `"name":"Acme Inc","cascade":false,"metadata":{}`)
	e.expect(event(t, "put-child-entity.json"), 201, `"parent_id":"org-acme","cascade":true`)
	// An update may leave parent_id out; a different parent is a conflict.
	e.expect(event(t, "put-child-entity.json", body(`{"name":"renamed","cascade":true}`)), 200, `"parent_id":"org-acme"`)
	e.expect(event(t, "put-child-entity.json", body(`{"parent_id":"org-other"}`)), 409, `"error":"parent_immutable"`)
	e.expect(event(t, "put-child-entity.json", body(`{"parent_id":""}`)), 409, `"error":"parent_immutable"`)
	got := e.expect(event(t, "get-entity.json"), 200, `"id":"key-acme-1"`)
	ent := struct{ httpapi.Entity }{}
	if err := json.Unmarshal([]byte(got.Body), &ent); err != nil || ent.Name != "renamed" || ent.CreatedAt.IsZero() {
		t.Fatalf("get: %s", got.Body)
	}
	e.expect(event(t, "children.json"), 200, `{"children":[{"id":"key-acme-1"`)
	// A child cannot be a parent; a parent with children cannot be deleted.
	e.expect(event(t, "put-entity.json", path("PUT", "/v1/entities/grandchild"), body(`{"parent_id":"key-acme-1"}`)), 409, `"error":"parent_is_child"`)
	e.expect(event(t, "put-entity.json", path("PUT", "/v1/entities/orphan"), body(`{"parent_id":"nobody"}`)), 404, `"error":"parent_not_found"`)
	e.expect(event(t, "delete-entity.json", path("DELETE", "/v1/entities/org-acme")), 409, `"error":"has_children"`)
	e.expect(event(t, "delete-entity.json"), 204, ``)
	e.expect(event(t, "get-entity.json"), 404, `"error":"entity_not_found"`)
	e.expect(event(t, "delete-entity.json"), 404, `"error":"entity_not_found"`)
	e.expect(event(t, "children.json", path("GET", "/v1/entities/nobody/children")), 404, `"error":"entity_not_found"`)
	e.expect(event(t, "children.json"), 200, `{"children":[]}`)
	e.expect(event(t, "delete-entity.json", path("DELETE", "/v1/entities/org-acme")), 204, ``)
}

func TestLimitsEvents(t *testing.T) {
	e := newEnv(t)
	// Entity limits need the entity.
	e.expect(event(t, "put-entity-limits.json"), 404, `"error":"entity_not_found"`)
	e.expect(event(t, "put-entity.json"), 201, ``)
	e.expect(event(t, "put-child-entity.json"), 201, ``)
	want := `{"limits":[{"name":"rpm","capacity":100,"refill_amount":100,"refill_period_seconds":60},{"name":"tpm","capacity":20000,"refill_amount":10000,"refill_period_seconds":60}]}`
	e.expect(event(t, "put-entity-limits.json"), 201, want)
	e.expect(event(t, "put-entity-limits.json"), 200, want)
	e.expect(event(t, "get-entity-limits.json"), 200, want)
	e.expect(event(t, "put-entity-default-limits.json"), 201, `"capacity":1000`)
	e.expect(event(t, "put-resource-limits.json"), 201, `"capacity":60`)
	e.expect(event(t, "get-resource-limits.json"), 200, `"capacity":60`)
	e.expect(event(t, "put-system-limits.json"), 201, `"capacity":10`)
	e.expect(event(t, "get-system-limits.json"), 200, `"capacity":10`)
	// The stored limits are the library's, scope by scope: _default_ is the entity default.
	ctx := context.Background()
	for sc, capacity := range map[limiter.Scope]int64{
		limiter.EntityResource("key-acme-1", "gpt-4"): 100, limiter.EntityDefault("org-acme"): 1000,
		limiter.ResourceDefault("gpt-4"): 60, limiter.SystemDefault(): 10,
	} {
		ls, err := e.lim.GetLimits(ctx, sc)
		if err != nil || ls[0].Capacity != capacity {
			t.Errorf("%+v: %v %v", sc, ls, err)
		}
	}
	e.expect(event(t, "get-entity-limits.json", path("GET", "/v1/entities/org-acme/limits/_default_")), 200, `"capacity":1000`)
	for _, name := range []string{"delete-entity-limits.json", "delete-resource-limits.json", "delete-system-limits.json"} {
		e.expect(event(t, name), 204, ``)
		e.expect(event(t, name), 404, `"error":"limits_not_found"`)
	}
	e.expect(event(t, "get-system-limits.json"), 404, `"error":"limits_not_found"`)
}

func TestAdminBadInput(t *testing.T) {
	e := newEnv(t)
	e.expect(event(t, "put-entity.json"), 201, ``)
	e.meter.Reset()
	cases := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"malformed", event(t, "put-entity.json", body(`{"name":`)), 400, "invalid_request"},
		{"unknown member", event(t, "put-entity.json", body(`{"name":"x","owner":"y"}`)), 400, "invalid_request"},
		{"metadata type", event(t, "put-entity.json", body(`{"metadata":{"a":1}}`)), 400, "invalid_request"},
		{"id with #", event(t, "put-entity.json", path("PUT", "/v1/entities/a%23b")), 400, "invalid_request"},
		{"id with space", event(t, "get-entity.json", path("GET", "/v1/entities/a%20b")), 400, "invalid_request"},
		{"own parent", event(t, "put-entity.json", path("PUT", "/v1/entities/self"), body(`{"parent_id":"self"}`)), 400, "invalid_request"},
		{"long name", event(t, "put-entity.json", body(`{"name":"`+strings.Repeat("n", 300)+`"}`)), 400, "invalid_request"},
		{"no limits", event(t, "put-system-limits.json", body(`{"limits":[]}`)), 400, "invalid_request"},
		{"limits missing", event(t, "put-system-limits.json", body(`{}`)), 400, "invalid_request"},
		{"duplicate limit", event(t, "put-system-limits.json", body(`{"limits":[{"name":"a","rate":1,"period":"minute"},{"name":"a","rate":2,"period":"minute"}]}`)), 400, "invalid_request"},
		{"bad limit", event(t, "put-resource-limits.json", body(`{"limits":[{"name":"a","rate":1}]}`)), 400, "invalid_request"},
		{"reserved resource", event(t, "put-resource-limits.json", path("PUT", "/v1/resources/_default_/limits")), 400, "invalid_request"},
		{"huge body", event(t, "put-entity.json", body(`{"name":"`+strings.Repeat("n", 70000)+`"}`)), 413, "payload_too_large"},
		{"wrong method", event(t, "get-entity.json", path("POST", "/v1/entities/org-acme")), 405, "method_not_allowed"},
		{"no route", event(t, "get-entity.json", path("GET", "/v1/entities")), 404, "not_found"},
		{"no route deep", event(t, "get-entity.json", path("GET", "/v1/entities/a/b/c/d")), 404, "not_found"},
	}
	for _, c := range cases {
		r := e.call(c.ev)
		var eb httpapi.ErrorBody
		_ = json.Unmarshal([]byte(r.Body), &eb)
		if r.StatusCode != c.status || eb.Error != c.code {
			t.Errorf("%s: got %d %.200s, want %d %s", c.name, r.StatusCode, r.Body, c.status, c.code)
		}
	}
	for op, u := range e.meter.Snapshot() {
		if op != "GetItem" && op != "Query" && op != "BatchGetItem" {
			t.Errorf("bad input made %d %s requests", u.Requests, op)
		}
	}
}

// The admin function takes API Gateway events only: a direct payload has no action to run.
func TestAdminHasNoDirectActions(t *testing.T) {
	e := newEnv(t)
	out, err := e.handler.Invoke(context.Background(), []byte(`{"action":"acquire"}`))
	if err != nil || !strings.Contains(string(out), `"status":400`) {
		t.Fatalf("%s %v", out, err)
	}
}
