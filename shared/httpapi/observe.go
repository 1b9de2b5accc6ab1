package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

// Observer is told of every request a Router served: the request (Route is its pattern, empty
// when no route matched), the answer and the time the router took. It runs on the request's
// goroutine after the answer is made, and must be safe for concurrent use.
type Observer func(ctx context.Context, r *Request, resp *Response, d time.Duration)

// Observe makes o see every request rt serves and returns rt. Call it before rt serves.
func (rt *Router) Observe(o Observer) *Router {
	rt.observe = o
	return rt
}

// RouteMetrics maps a route pattern to the counter its 2xx answers count, such as
// "/v1/acquire" → metrics.MetricAcquires.
type RouteMetrics map[string]string

// MetricsObserver returns an Observer writing one EMF line per request to em, with dimensions
// FunctionName (function) and Route, the metrics of package metrics' HTTP constants, and the
// route's own counter from routes. now is the clock of the lines' timestamps.
func MetricsObserver(em *metrics.Emitter, function string, routes RouteMetrics, now func() time.Time) Observer {
	return func(ctx context.Context, r *Request, resp *Response, d time.Duration) {
		route := r.Route
		if route == "" {
			route = "unmatched"
		}
		st := resp.Status
		ms := []metrics.Metric{
			metrics.Count(metrics.MetricRequests, 1),
			metrics.Duration(metrics.MetricLatency, d),
			metrics.Counter(metrics.MetricClientErrors, st >= 400 && st < 500 && st != http.StatusTooManyRequests),
			metrics.Counter(metrics.MetricRefusals, st == http.StatusTooManyRequests),
			metrics.Counter(metrics.MetricServerErrors, st >= 500),
			metrics.Counter(metrics.MetricUnavailable, st == http.StatusServiceUnavailable),
			metrics.Counter(metrics.MetricDegraded, resp.Degraded),
		}
		if name, ok := routes[r.Route]; ok {
			ms = append(ms, metrics.Counter(name, st >= 200 && st < 300))
		}
		dims := []metrics.Dimension{{Name: metrics.DimFunction, Value: function}, {Name: metrics.DimRoute, Value: route}}
		if err := em.Emit(now(), dims, ms...); err != nil {
			r.Log().WarnContext(ctx, "metrics not written", "error", err.Error())
		}
	}
}
