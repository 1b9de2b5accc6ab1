package gateway_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
)

// recorder is a function that records the event it got and answers 200.
type recorder struct {
	ev  events.APIGatewayV2HTTPRequest
	ctx context.Context
}

func (r *recorder) handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r.ev, r.ctx = ev, ctx
	return events.APIGatewayV2HTTPResponse{StatusCode: 207, Headers: map[string]string{"x-fn": "yes"},
		MultiValueHeaders: map[string][]string{"x-multi": {"a", "b"}}, Cookies: []string{"c=1"},
		Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), IsBase64Encoded: true}, nil
}

func serve(t *testing.T, fns ...gateway.Function) string {
	t.Helper()
	srv, err := gateway.Listen("127.0.0.1:0", gateway.New(slog.New(slog.DiscardHandler), gateway.Routes(), fns...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv.URL
}

// The gateway sends the event API Gateway's HTTP API sends, and writes back the response.
func TestEventShape(t *testing.T) {
	acq, adm := &recorder{}, &recorder{}
	base := serve(t, gateway.Function{Name: "acquire", Handler: lambda.NewHandler(acq.handle)},
		gateway.Function{Name: "admin", Handler: lambda.NewHandler(adm.handle)})

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/leases/abc/commit?x=1&x=2&y=%20z", strings.NewReader(`{"k":"v"}`))
	req.Header.Add("X-Custom", "one")
	req.Header.Add("X-Custom", "two")
	req.Header.Set("Cookie", "a=1; b=2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 207 || string(body) != "\x00\x01\x02" || resp.Header.Get("X-Fn") != "yes" ||
		strings.Join(resp.Header.Values("X-Multi"), ",") != "a,b" || resp.Header.Get("Set-Cookie") != "c=1" || resp.Header.Get("Apigw-Requestid") == "" {
		t.Fatalf("response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	ev := acq.ev
	if ev.Version != "2.0" || ev.RouteKey != "POST /v1/leases/{lease_id}/{action}" || ev.RawPath != "/v1/leases/abc/commit" ||
		ev.RawQueryString != "x=1&x=2&y=%20z" || ev.QueryStringParameters["x"] != "1,2" || ev.QueryStringParameters["y"] != " z" ||
		ev.Headers["x-custom"] != "one,two" || ev.Headers["cookie"] != "" || strings.Join(ev.Cookies, ";") != "a=1;b=2" ||
		ev.PathParameters["lease_id"] != "abc" || ev.PathParameters["action"] != "commit" || ev.Body != `{"k":"v"}` || ev.IsBase64Encoded ||
		ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.Stage != "$default" || ev.RequestContext.RequestID == "" ||
		ev.RequestContext.HTTP.SourceIP != "127.0.0.1" || ev.RequestContext.TimeEpoch == 0 {
		b, _ := json.MarshalIndent(ev, "", " ")
		t.Fatalf("event:\n%s", b)
	}
	if lc, ok := lambdacontext.FromContext(acq.ctx); !ok || len(lc.AwsRequestID) != 36 {
		t.Errorf("no Lambda context: %+v", lc)
	}

	// Admin paths go to admin, any method; binary bodies are base64; the path is decoded as
	// API Gateway decodes it.
	req, _ = http.NewRequest(http.MethodPatch, base+"/v1/entities/a%2Fb/limits/x", strings.NewReader("\xff\xfe"))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ev = adm.ev
	if ev.RouteKey != "ANY /v1/entities/{proxy+}" || ev.PathParameters["proxy"] != "a/b/limits/x" || ev.RawPath != "/v1/entities/a/b/limits/x" || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte("\xff\xfe")) {
		b, _ := json.MarshalIndent(ev, "", " ")
		t.Fatalf("admin event:\n%s", b)
	}
}

func TestGatewayAnswers(t *testing.T) {
	failing := lambda.NewHandler(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("crash")
	})
	base := serve(t, gateway.Function{Name: "acquire", Handler: failing}, gateway.Function{Name: "admin", Handler: failing})
	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 404, `{"message":"Not Found"}`},
		{"GET", "/v1/acquire", 404, `{"message":"Not Found"}`}, // only POST is routed
		{"POST", "/v2/acquire", 404, `{"message":"Not Found"}`},
		{"POST", "/v1/entities/", 404, `{"message":"Not Found"}`},
		{"POST", "/v1/acquire", 500, `{"message":"Internal Server Error"}`},
		{"DELETE", "/v1/system", 500, `{"message":"Internal Server Error"}`},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || strings.TrimSpace(string(body)) != c.body {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
}

// A client that sends part of its body and stops gets a 408 once the read timeout passes; the
// function never runs. (The timeout is short here; the default is ReadTimeout.)
func TestSlowBodyTimesOut(t *testing.T) {
	var called atomic.Bool
	fn := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		called.Store(true)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}
	srv, err := gateway.Listen("127.0.0.1:0", gateway.New(slog.New(slog.DiscardHandler), gateway.Routes(),
		gateway.Function{Name: "acquire", Handler: lambda.NewHandler(fn)}), gateway.WithReadTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A guard against a hang only, not a timing assertion.
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, "POST /v1/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"entity"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || called.Load() {
		t.Fatalf("stalled body: status %d, function called %v", resp.StatusCode, called.Load())
	}
}

// The embedded route table parses, names only the stack's functions, and ParseRoutes names a
// bad line.
func TestRoutes(t *testing.T) {
	routes := gateway.Routes()
	if len(routes) != 10 {
		t.Fatalf("routes.txt: %d routes, want 10: %v", len(routes), routes)
	}
	if got, want := routes[1], (gateway.Route{Method: "POST", Pattern: "/v1/leases/{lease_id}/{action}", Function: "acquire"}); got != want {
		t.Errorf("routes[1] = %+v, want %+v", got, want)
	}
	for _, r := range routes {
		if r.Function != acquireapi.Name && r.Function != adminapi.Name {
			t.Errorf("route %s %s: function %q is neither %q nor %q", r.Method, r.Pattern, r.Function, acquireapi.Name, adminapi.Name)
		}
	}
	for _, bad := range []string{"POST /v1/acquire", "post /v1/acquire acquire", "POST v1/acquire acquire", "ANY /v1/{proxy+}/x admin", "POST /v1/a acquire extra"} {
		_, err := gateway.ParseRoutes("# header\n\nGET /v1/ok admin\n" + bad + "\n")
		if err == nil || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("ParseRoutes(%q): error %v, want one naming line 4", bad, err)
		}
	}
	if !routes[5].Matches("DELETE", "/v1/entities/a/limits/b") || routes[5].Matches("GET", "/v1/entities") || routes[0].Matches("GET", "/v1/acquire") {
		t.Errorf("Matches: wrong answer for %+v or %+v", routes[5], routes[0])
	}
}
