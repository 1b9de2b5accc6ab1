package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// echoRouter answers every route with what it saw.
func echoRouter(log *slog.Logger) *Router {
	echo := func(_ context.Context, r *Request) *Response {
		return JSON(http.StatusOK, map[string]any{"route": r.Route, "params": r.Params, "body": string(r.Body), "query": r.Query.Get("q")})
	}
	return NewRouter("test", log,
		[]Route{
			{Method: http.MethodPost, Pattern: "/v1/things/{id}/poke", Handler: echo},
			{Method: http.MethodGet, Pattern: "/v1/things/{id}", Handler: echo},
			{Method: http.MethodPut, Pattern: "/v1/things/{id}", Handler: echo},
			{Method: http.MethodPost, Pattern: "/v1/panic", Handler: func(context.Context, *Request) *Response { panic("boom") }},
			{Method: http.MethodPost, Pattern: "/v1/nil", Handler: func(context.Context, *Request) *Response { return nil }},
		},
		[]Action{{Name: "poke", Method: http.MethodPost, Pattern: "/v1/things/{id}/poke"}})
}

func v2Event(method, path, body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: path, Body: body,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{Stage: "$default", RequestID: "req-1",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
}

func TestRouterEvents(t *testing.T) {
	var logs bytes.Buffer
	rt := echoRouter(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	cases := []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/v1/things/a%2Fb/poke", 200, `"params":{"id":"a/b"}`},
		{"GET", "/v1/things/x", 200, `"route":"/v1/things/{id}"`},
		{"DELETE", "/v1/things/x", 405, `"error":"method_not_allowed"`},
		{"GET", "/v1/things", 404, `"error":"not_found"`},
		{"GET", "/v1/things/x/", 404, `"error":"not_found"`},
		{"GET", "/v1/things//", 404, `"error":"not_found"`},
		{"GET", "v1/things/x", 404, `"error":"not_found"`},
		{"GET", "/v1/things/%zz", 404, `"error":"not_found"`},
		{"POST", "/v1/panic", 500, `"error":"internal_error"`},
		{"POST", "/v1/nil", 500, `"error":"internal_error"`},
	}
	for _, c := range cases {
		resp := rt.HandleEvent(ctx, v2Event(c.method, c.path, ""))
		if resp.StatusCode != c.status || !strings.Contains(resp.Body, c.want) {
			t.Errorf("%s %s: got %d %s", c.method, c.path, resp.StatusCode, resp.Body)
		}
	}
	if resp := rt.HandleEvent(ctx, v2Event("DELETE", "/v1/things/x", "")); resp.Headers["allow"] != "GET, PUT" {
		t.Errorf("Allow %q", resp.Headers["allow"])
	}
	if !strings.Contains(logs.String(), `"msg":"handler panicked"`) {
		t.Errorf("panic not logged: %s", logs.String())
	}

	// A named stage prefixes the raw path; base64 bodies are decoded; the query is parsed.
	ev := v2Event("PUT", "/prod/v1/things/x", base64.StdEncoding.EncodeToString([]byte(`{"k":1}`)))
	ev.RequestContext.Stage, ev.IsBase64Encoded, ev.RawQueryString = "prod", true, "q=hello%20world"
	if resp := rt.HandleEvent(ctx, ev); resp.StatusCode != 200 || !strings.Contains(resp.Body, `"body":"{\"k\":1}"`) || !strings.Contains(resp.Body, `"query":"hello world"`) {
		t.Errorf("stage/base64/query: %d %s", resp.StatusCode, resp.Body)
	}
	// A path that merely starts with the stage's name keeps it.
	ev2 := v2Event("GET", "/production/v1/things/x", "")
	ev2.RequestContext.Stage = "prod"
	if resp := rt.HandleEvent(ctx, ev2); resp.StatusCode != 404 {
		t.Errorf("stage prefix of another segment: %d %s", resp.StatusCode, resp.Body)
	}
	ev.Body = "!!!not base64"
	if resp := rt.HandleEvent(ctx, ev); resp.StatusCode != 400 {
		t.Errorf("bad base64: %d %s", resp.StatusCode, resp.Body)
	}
	// Bodies over the limit are refused before decoding, plain or base64.
	big := strings.Repeat("x", MaxBodyBytes+1)
	if resp := rt.HandleEvent(ctx, v2Event("PUT", "/v1/things/x", big)); resp.StatusCode != 413 {
		t.Errorf("large body: %d", resp.StatusCode)
	}
	ev = v2Event("PUT", "/v1/things/x", base64.StdEncoding.EncodeToString([]byte(big)))
	ev.IsBase64Encoded = true
	if resp := rt.HandleEvent(ctx, ev); resp.StatusCode != 413 {
		t.Errorf("large base64 body: %d", resp.StatusCode)
	}
}

func TestInvokeShapes(t *testing.T) {
	rt := echoRouter(slog.New(slog.DiscardHandler))
	h := lambda.NewHandler(rt)
	ctx := context.Background()

	// An API Gateway event gets an API Gateway response.
	ev, _ := json.Marshal(v2Event("POST", "/v1/things/t1/poke", `{"n":1}`))
	out, err := h.Invoke(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"params":{"id":"t1"}`) {
		t.Fatalf("event: %s %v", out, err)
	}

	// A direct payload gets {status, body}: the path member fills the path, the rest is the body.
	direct := func(payload string) DirectResponse {
		t.Helper()
		out, err := h.Invoke(ctx, []byte(payload))
		if err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		var d DirectResponse
		if err := json.Unmarshal(out, &d); err != nil || d.Status == 0 {
			t.Fatalf("%s: answer %s: %v", payload, out, err)
		}
		return d
	}
	d := direct(`{"action":"poke","id":"a/b c","n":1}`)
	if d.Status != 200 || !strings.Contains(string(d.Body), `"params":{"id":"a/b c"}`) || !strings.Contains(string(d.Body), `"body":"{\"n\":1}"`) {
		t.Errorf("direct: %d %s", d.Status, d.Body)
	}
	for payload, wantStatus := range map[string]int{
		`{"action":"nope"}`:            400,
		`{"action":7}`:                 400,
		`{"action":"poke"}`:            400, // no id
		`{"action":"poke","id":""}`:    400,
		`{"action":"poke","id":5}`:     400,
		`[]`:                           400,
		`{}`:                           400,
		`"hello"`:                      400,
		`{"version":"1.0","path":"/"}`: 400,
		`{"action":"poke","id":"x","big":"` + strings.Repeat("y", MaxBodyBytes+2048) + `"}`: 413,
	} {
		if got := direct(payload); got.Status != wantStatus {
			t.Errorf("%.60s: status %d, want %d (%s)", payload, got.Status, wantStatus, got.Body)
		}
	}
}

// A direct payload with a member given twice is a 400 (json would keep the last "action").
func TestDirectDuplicateMember(t *testing.T) {
	rt := echoRouter(slog.New(slog.DiscardHandler))
	for _, p := range []string{`{"action":"poke","id":"a","action":"nope"}`, `{"action":"poke","id":"a","x":{"y":1,"y":2}}`} {
		resp := rt.HandleDirect(context.Background(), []byte(p))
		if resp.Status != http.StatusBadRequest || !strings.Contains(string(resp.Body), "given twice") {
			t.Errorf("%s: %d %s", p, resp.Status, resp.Body)
		}
	}
	if resp := rt.HandleDirect(context.Background(), []byte(`{"action":"poke","id":"a"}`)); resp.Status != http.StatusOK {
		t.Errorf("valid payload: %d %s", resp.Status, resp.Body)
	}
}
