// Package gateway is a local stand-in for API Gateway's HTTP API in front of the functions: it
// turns each HTTP request into the payload-2.0 event API Gateway would send, invokes the
// function that owns the route through the same lambda.Handler that lambda.Start runs (JSON in,
// JSON out), and turns the function's response back into HTTP. The routes are the deployed
// API's, from routes.txt (see Routes; infra's Routes is tested against it): a path no route has
// is answered 404 {"message":"Not Found"}, as API Gateway does. There is no IAM authorization locally: bind to loopback.
package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/internal/randid"
)

// Function is a function behind the gateway.
type Function struct {
	Name    string
	Handler lambda.Handler
}

// Route sends requests of Method (or any method for "ANY") on Pattern to a function. Patterns
// are literal and {name} segments, and a last {proxy+} segment that takes one or more segments.
type Route struct {
	Method   string
	Pattern  string
	Function string
}

//go:embed routes.txt
var routesTxt string

// Routes returns the deployed API's routes, in order, from routes.txt (embedded): the one route
// table, which the CDK stack's routes are tested against. It panics only if that file, part of
// the binary, is malformed, which TestRoutes rules out.
func Routes() []Route {
	routes, err := ParseRoutes(routesTxt)
	if err != nil {
		panic(err)
	}
	return routes
}

// ParseRoutes parses a route table: one route a line as METHOD PATH FUNCTION separated by
// blanks, blank lines and lines starting with # ignored. METHOD is upper case (or ANY), PATH
// starts with /, and {proxy+} may only be its last segment. The error names the first bad line.
func ParseRoutes(table string) ([]Route, error) {
	var routes []Route
	for i, line := range strings.Split(table, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != strings.ToUpper(f[0]) || !strings.HasPrefix(f[1], "/") ||
			strings.Contains(strings.TrimSuffix(f[1], "/{proxy+}"), "{proxy+}") {
			return nil, fmt.Errorf("gateway: route table line %d: want METHOD /PATH FUNCTION, got %q", i+1, line)
		}
		routes = append(routes, Route{Method: f[0], Pattern: f[1], Function: f[2]})
	}
	return routes, nil
}

// Matches reports whether r serves a request of method on path (a path as sent, without the
// query string).
func (r Route) Matches(method, path string) bool {
	_, ok := r.bind(method, path)
	return ok
}

// bind returns the path parameters when r serves method on path.
func (r Route) bind(method, path string) (map[string]string, bool) {
	if r.Method != "ANY" && r.Method != method {
		return nil, false
	}
	return bind(strings.Split(strings.TrimPrefix(r.Pattern, "/"), "/"), strings.Split(strings.TrimPrefix(path, "/"), "/"))
}

// Timeout is API Gateway's longest integration timeout.
const Timeout = 30 * time.Second

// maxBody is API Gateway's payload limit (10 MB); the functions refuse far less.
const maxBody = 10 << 20

// Gateway serves HTTP by invoking functions. It is safe for concurrent use (the functions'
// handlers are).
type Gateway struct {
	fns    map[string]lambda.Handler
	routes []Route
	log    *slog.Logger

	principal string // the IAM principal every request is signed by (LocalPrincipal)
}

// LocalPrincipal is the IAM principal the local gateway puts in every request's context, where
// API Gateway puts the one whose SigV4 signature it verified: the audit log's "who" locally.
const LocalPrincipal = "arn:aws:iam::000000000000:user/local"

// New returns a gateway over fns with routes; log gets one access-log line per request.
func New(log *slog.Logger, routes []Route, fns ...Function) *Gateway {
	g := &Gateway{fns: map[string]lambda.Handler{}, routes: routes, log: log, principal: LocalPrincipal}
	for _, f := range fns {
		g.fns[f.Name] = f.Handler
	}
	return g
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	status, fn := g.serve(w, r, reqID)
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "access",
		slog.String("request_id", reqID), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("function", fn), slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, reqID string) (int, string) {
	rt, params := g.match(r.Method, r.URL.Path)
	if rt == nil {
		return gatewayError(w, http.StatusNotFound, "Not Found"), ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return gatewayError(w, http.StatusRequestTimeout, "Request Timeout"), rt.Function
	case err != nil:
		return gatewayError(w, http.StatusBadRequest, "Bad Request"), rt.Function
	}
	if len(body) > maxBody {
		return gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large"), rt.Function
	}
	ev := Event(r, body, reqID, rt.Method+" "+rt.Pattern, params)
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccountID: "000000000000", UserARN: g.principal}}
	payload, err := json.Marshal(ev)
	if err != nil {
		return gatewayError(w, http.StatusInternalServerError, "Internal Server Error"), rt.Function
	}
	ctx, cancel := context.WithTimeout(r.Context(), Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       newUUID(),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + rt.Function,
	})
	out, err := g.fns[rt.Function].Invoke(ctx, payload)
	if err != nil {
		g.log.ErrorContext(ctx, "function error", "function", rt.Function, "error", err.Error())
		return gatewayError(w, http.StatusInternalServerError, "Internal Server Error"), rt.Function
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		g.log.ErrorContext(ctx, "malformed function response", "function", rt.Function)
		return gatewayError(w, http.StatusInternalServerError, "Internal Server Error"), rt.Function
	}
	return WriteResponse(w, resp), rt.Function
}

// match returns the route for method and path and its path parameters.
func (g *Gateway) match(method, path string) (*Route, map[string]string) {
	for i := range g.routes {
		if params, ok := g.routes[i].bind(method, path); ok {
			return &g.routes[i], params
		}
	}
	return nil, nil
}

func bind(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		if p == "{proxy+}" {
			if i >= len(segs) || strings.Join(segs[i:], "") == "" {
				return nil, false
			}
			params["proxy"] = strings.Join(segs[i:], "/")
			return params, true
		}
		if i >= len(segs) || segs[i] == "" {
			return nil, false
		}
		if name, ok := strings.CutPrefix(p, "{"); ok {
			params[strings.TrimSuffix(name, "}")] = segs[i]
		} else if p != segs[i] {
			return nil, false
		}
	}
	if len(segs) != len(pattern) {
		return nil, false
	}
	if len(params) == 0 {
		params = nil
	}
	return params, true
}

// Event returns the payload-2.0 event API Gateway's HTTP API sends for r with body: headers
// under lower-case names (repeated ones joined by commas), cookies apart, the query both raw and
// parsed, and rawPath as API Gateway gives it (percent-decoded). routeKey is the matched route
// ("POST /v1/acquire"), params its path parameters.
func Event(r *http.Request, body []byte, requestID, routeKey string, params map[string]string) events.APIGatewayV2HTTPRequest {
	now := time.Now().UTC()
	headers := make(map[string]string, len(r.Header)+1)
	var cookies []string
	for name, vals := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			for _, v := range vals {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[name] = strings.Join(vals, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	domain := r.Host
	if h, _, err := net.SplitHostPort(domain); err == nil {
		domain = h
	}
	prefix, _, _ := strings.Cut(domain, ".")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query, PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: routeKey, AccountID: "000000000000", Stage: "$default", RequestID: requestID,
			APIID: "local", DomainName: domain, DomainPrefix: prefix,
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

// WriteResponse writes a function's payload-2.0 response and returns its status.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) int {
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
	return resp.StatusCode
}

// gatewayError answers as API Gateway does when it answers itself: {"message": …}.
func gatewayError(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
	return status
}

// newRequestID returns an id shaped like API Gateway's (12 random bytes, base64).
func newRequestID() string { return base64.RawURLEncoding.EncodeToString(randid.Bytes(12)) }

// newUUID returns a random UUID, the shape of a Lambda request id.
func newUUID() string {
	b := randid.Bytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
