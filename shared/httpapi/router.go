package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/clip"
)

const contentTypeJSON = "application/json"

// Request is one call of a route, whatever carried it (an API Gateway event, a direct
// invocation, a test).
type Request struct {
	Method string
	// Path is the request's path as received; Route is the pattern it matched.
	Path  string
	Route string
	// Params holds the path's {name} segments, percent-decoded.
	Params map[string]string
	// Header holds the request's headers under lower-case names.
	Header map[string]string
	Query  url.Values
	Body   []byte
	// RequestID identifies the request in logs (API Gateway's id, or the Lambda request id).
	RequestID string
	// Principal is the IAM principal (ARN) API Gateway's IAM authorization verified, "" when
	// the request came without one (a direct invocation, or an API without IAM auth).
	Principal string

	log    *slog.Logger // the router's
	reqLog *slog.Logger // with the request's attributes, made on first use
}

// Log returns the router's logger with the request's method, path and id.
func (r *Request) Log() *slog.Logger {
	if r.reqLog == nil {
		l := r.log
		if l == nil {
			l = slog.Default()
		}
		r.reqLog = l.With("method", r.Method, "path", logPath(r.Path))
		if r.RequestID != "" {
			r.reqLog = r.reqLog.With("request_id", r.RequestID)
		}
	}
	return r.reqLog
}

// Param returns the path parameter name.
func (r *Request) Param(name string) string { return r.Params[name] }

// Response is a route's answer. Header names are lower case.
type Response struct {
	Status int
	Header map[string]string
	Body   []byte
	// Err is the cause of an error answer, for the log line only; it is never sent.
	Err error
	// Degraded says the answer was given without the limiter's storage (a fail-open grant),
	// for the metrics only; it is never sent as such.
	Degraded bool
}

// JSON returns a response with status and v encoded as its JSON body.
func JSON(status int, v any) *Response {
	body, err := json.Marshal(v)
	if err != nil {
		return &Response{Status: http.StatusInternalServerError, Header: map[string]string{"content-type": contentTypeJSON},
			Body: []byte(`{"error":"internal_error","message":"internal error"}`), Err: fmt.Errorf("encode response: %w", err)}
	}
	return &Response{Status: status, Header: map[string]string{"content-type": contentTypeJSON}, Body: body}
}

// NoContent returns a 204 response.
func NoContent() *Response {
	return &Response{Status: http.StatusNoContent, Header: map[string]string{}}
}

// HandlerFunc serves one route. It returns an answer for every input, errors included (see
// ErrorResponse); a panic is recovered by the router and answered 500.
type HandlerFunc func(ctx context.Context, r *Request) *Response

// Route binds a method and a path pattern to a handler. Patterns are literal segments and
// {name} segments, each matching one non-empty path segment: /v1/leases/{lease_id}/commit.
type Route struct {
	Method  string
	Pattern string
	Handler HandlerFunc
}

// Action binds a direct invocation's action to a route. The payload's members named by the
// pattern's {name} segments fill them; the other members, less "action", are the route's body.
type Action struct {
	Name    string
	Method  string
	Pattern string
}

// Router dispatches requests to routes. It answers 404 not_found for a path no route has and 405
// method_not_allowed (with Allow) for a path some route has with another method, recovers
// panics as 500, and writes one log line per request. A Router is safe for concurrent use.
type Router struct {
	name    string
	log     *slog.Logger
	routes  []route
	actions map[string]Action
	observe Observer // nil: none
}

type route struct {
	Route
	segs []string
}

// NewRouter returns a router for the function called name, logging to log.
func NewRouter(name string, log *slog.Logger, routes []Route, actions []Action) *Router {
	if log == nil {
		log = slog.Default()
	}
	rt := &Router{name: name, log: log.With("function", name), actions: map[string]Action{}}
	for _, r := range routes {
		rt.routes = append(rt.routes, route{Route: r, segs: strings.Split(strings.Trim(r.Pattern, "/"), "/")})
	}
	for _, a := range actions {
		rt.actions[a.Name] = a
	}
	return rt
}

// Routes returns the router's routes in the order given.
func (rt *Router) Routes() []Route {
	out := make([]Route, 0, len(rt.routes))
	for _, r := range rt.routes {
		out = append(out, r.Route)
	}
	return out
}

// Actions returns the names of the direct actions, sorted.
func (rt *Router) Actions() []string {
	out := make([]string, 0, len(rt.actions))
	for name := range rt.actions {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// match returns the route for method and path, or a nil route and the methods the path has.
func (rt *Router) match(method, path string) (*route, map[string]string, []string) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil, nil
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var allow []string
	for i := range rt.routes {
		r := &rt.routes[i]
		params, ok := r.bind(segs)
		if !ok {
			continue
		}
		if r.Method == method {
			return r, params, nil
		}
		if !slices.Contains(allow, r.Method) {
			allow = append(allow, r.Method)
		}
	}
	return nil, nil, allow
}

// bind matches path segments against the route's pattern.
func (r *route) bind(segs []string) (map[string]string, bool) {
	if len(segs) != len(r.segs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range r.segs {
		s := segs[i]
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if strings.Contains(s, "%") {
				var err error
				if s, err = url.PathUnescape(s); err != nil {
					return nil, false
				}
			}
			if s == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string, 2)
			}
			params[strings.TrimSuffix(name, "}")] = s
		} else if s != p {
			return nil, false
		}
	}
	return params, true
}

// Serve answers req, which has Method, Path, Header, Query, Body and RequestID set.
func (rt *Router) Serve(ctx context.Context, req *Request) (resp *Response) {
	start := time.Now()
	req.log = rt.log
	defer func() {
		if p := recover(); p != nil {
			resp = ErrorResponse(fmt.Errorf("panic: %v", p))
			req.Log().ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		d := time.Since(start)
		rt.logDone(ctx, req, resp, d)
		if rt.observe != nil {
			rt.observe(ctx, req, resp, d)
		}
	}()
	r, params, allow := rt.match(req.Method, req.Path)
	if r == nil {
		if len(allow) > 0 {
			resp = JSON(http.StatusMethodNotAllowed, ErrorBody{Error: CodeMethodNotAllowed,
				Message: fmt.Sprintf("%s is not allowed here; use %s", req.Method, strings.Join(allow, ", "))})
			resp.Header["allow"] = strings.Join(allow, ", ")
			return resp
		}
		return JSON(http.StatusNotFound, ErrorBody{Error: CodeNotFound, Message: "no route for " + req.Method + " " + logPath(req.Path)})
	}
	req.Route, req.Params = r.Pattern, params
	if len(req.Body) > MaxBodyBytes {
		return ErrorResponse(&RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("the body holds %d bytes; at most %d are accepted", len(req.Body), MaxBodyBytes)})
	}
	resp = r.Handler(ctx, req)
	if resp == nil {
		resp = ErrorResponse(fmt.Errorf("route %s %s answered nothing", r.Method, r.Pattern))
	}
	return resp
}

// logDone writes the request's log line: errors (5xx) at ERROR with their cause, refusals of
// bad input at INFO, the rest (successes, 404s of leases, 429s) at DEBUG. API Gateway's access
// logs hold every request; the function's log holds what needs a look.
func (rt *Router) logDone(ctx context.Context, req *Request, resp *Response, d time.Duration) {
	level := slog.LevelDebug
	switch {
	case resp.Status >= 500:
		level = slog.LevelError
	case resp.Status == http.StatusBadRequest || resp.Status == http.StatusRequestEntityTooLarge || resp.Status == http.StatusMethodNotAllowed:
		level = slog.LevelInfo
	}
	if !rt.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.Int("status", resp.Status), slog.Float64("duration_ms", float64(d.Microseconds())/1000)}
	if req.Route != "" {
		attrs = append(attrs, slog.String("route", req.Route))
	}
	if resp.Err != nil {
		// Bounded: a refusal's message may quote the offending input.
		attrs = append(attrs, slog.String("error", clip.String(resp.Err.Error(), 1024)))
	}
	req.Log().LogAttrs(ctx, level, "request", attrs...)
}

// logPath bounds a path written to the log.
func logPath(p string) string { return clip.String(p, 512) }
