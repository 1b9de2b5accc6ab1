// Package acquireapi is the acquire function: the routes that take tokens, look at buckets and
// settle leases. Its handlers decode with package httpapi, call the limiter, and encode; the
// same Router answers API Gateway events, direct invocations and the local gateway.
//
// The function's IAM role may write bucket and lease items only, so the Limiter it is given is
// an interface without entity or limit writes: the split holds at compile time too.
package acquireapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

// Name is the function's name in logs and routes.
const Name = "acquire"

// Limiter is what the acquire function may ask of the library: acquire, load and settle leases,
// and look at buckets. *limiter.Limiter implements it.
type Limiter interface {
	Acquire(ctx context.Context, req limiter.AcquireRequest) (*limiter.Lease, error)
	Lease(ctx context.Context, id string) (*limiter.Lease, error)
	Available(ctx context.Context, req limiter.AvailableRequest) (map[string]int64, error)
	TimeUntilAvailable(ctx context.Context, req limiter.AvailableRequest, needed map[string]int64) (time.Duration, error)
}

// Paths of the acquire routes.
const (
	PathAcquire            = "/v1/acquire"
	PathAdjust             = "/v1/leases/{lease_id}/adjust"
	PathCommit             = "/v1/leases/{lease_id}/commit"
	PathRollback           = "/v1/leases/{lease_id}/rollback"
	PathAvailable          = "/v1/available"
	PathTimeUntilAvailable = "/v1/time-until-available"
)

// Direct invocation actions.
const (
	ActionAcquire            = "acquire"
	ActionAdjust             = "adjust"
	ActionCommit             = "commit"
	ActionRollback           = "rollback"
	ActionAvailable          = "available"
	ActionTimeUntilAvailable = "time_until_available"
)

// RouteMetrics returns the counters of the acquire routes' 2xx answers, for
// httpapi.MetricsObserver: acquires on PathAcquire, lease settles on PathCommit and PathRollback.
func RouteMetrics() httpapi.RouteMetrics {
	return httpapi.RouteMetrics{
		PathAcquire:  metrics.MetricAcquires,
		PathCommit:   metrics.MetricLeaseSettles,
		PathRollback: metrics.MetricLeaseSettles,
	}
}

type handlers struct{ l Limiter }

// New returns the acquire function's router: a lambda.Handler for API Gateway events and
// direct invocations alike.
func New(l Limiter, log *slog.Logger) *httpapi.Router {
	h := &handlers{l: l}
	post := http.MethodPost
	return httpapi.NewRouter(Name, log,
		[]httpapi.Route{
			{Method: post, Pattern: PathAcquire, Handler: h.acquire},
			{Method: post, Pattern: PathAdjust, Handler: h.adjust},
			{Method: post, Pattern: PathCommit, Handler: h.commit},
			{Method: post, Pattern: PathRollback, Handler: h.rollback},
			{Method: post, Pattern: PathAvailable, Handler: h.available},
			{Method: post, Pattern: PathTimeUntilAvailable, Handler: h.timeUntilAvailable},
		},
		[]httpapi.Action{
			{Name: ActionAcquire, Method: post, Pattern: PathAcquire},
			{Name: ActionAdjust, Method: post, Pattern: PathAdjust},
			{Name: ActionCommit, Method: post, Pattern: PathCommit},
			{Name: ActionRollback, Method: post, Pattern: PathRollback},
			{Name: ActionAvailable, Method: post, Pattern: PathAvailable},
			{Name: ActionTimeUntilAvailable, Method: post, Pattern: PathTimeUntilAvailable},
		})
}

func (h *handlers) acquire(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.AcquireRequest
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	req, err := in.Limiter()
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	req.Principal = r.Principal // request ids are the caller's own
	lease, err := h.l.Acquire(ctx, req)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	reason := ""
	if lease.Degraded() {
		reason = httpapi.DegradedUnavailable
		r.Log().WarnContext(ctx, "granted a degraded lease (fail open)", "entity_id", req.EntityID, "resource", req.Resource,
			"cause", lease.DegradedCause().Error())
	}
	statuses := lease.Statuses()
	out := httpapi.AcquireResponse{
		LeaseID: lease.ID(), EntityID: lease.EntityID(), Resource: lease.Resource(),
		Consumed: lease.Consumed(), Statuses: httpapi.StatusesFrom(statuses),
		ExpiresAt: lease.ExpiresAt(), Degraded: lease.Degraded(), DegradedReason: reason,
	}
	if in.Commit {
		// An in-memory lease: its commit writes nothing, and its id names nothing stored.
		if err := lease.Commit(ctx); err != nil {
			return httpapi.ErrorResponse(err)
		}
		out.LeaseID, out.Committed = "", true
	}
	resp := httpapi.JSON(http.StatusOK, out)
	resp.Degraded = lease.Degraded()
	httpapi.SetRateLimitHeaders(resp.Header, statuses)
	return resp
}

// lease loads the lease the path names.
func (h *handlers) lease(ctx context.Context, r *httpapi.Request) (*limiter.Lease, error) {
	return h.l.Lease(ctx, r.Param("lease_id"))
}

func (h *handlers) adjust(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.AdjustRequest
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	if err := in.Check(); err != nil {
		return httpapi.ErrorResponse(err)
	}
	lease, err := h.lease(ctx, r)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	if err := lease.AdjustOnce(ctx, in.IdempotencyKey, in.Adjust); err != nil {
		return httpapi.ErrorResponse(err)
	}
	statuses := lease.Statuses()
	resp := httpapi.JSON(http.StatusOK, httpapi.LeaseResponse{LeaseID: lease.ID(), State: httpapi.LeaseOpen,
		Consumed: lease.Consumed(), Statuses: httpapi.StatusesFrom(statuses)})
	httpapi.SetRateLimitHeaders(resp.Header, statuses)
	return resp
}

func (h *handlers) commit(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	return h.settle(ctx, r, func(l *limiter.Lease, in httpapi.SettleRequest) error {
		if in.Consumed != nil {
			return l.Settle(ctx, in.Consumed) // the final count and the commit in one write
		}
		return l.Commit(ctx)
	}, httpapi.LeaseCommitted)
}

func (h *handlers) rollback(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	return h.settle(ctx, r, func(l *limiter.Lease, in httpapi.SettleRequest) error {
		if in.Consumed != nil {
			return httpapi.Invalid("consumed", "a rollback keeps nothing: drop consumed")
		}
		return l.Rollback(ctx)
	}, httpapi.LeaseRolledBack)
}

// settle ends the lease with end: the body is empty or a SettleRequest.
func (h *handlers) settle(ctx context.Context, r *httpapi.Request, end func(*limiter.Lease, httpapi.SettleRequest) error, state string) *httpapi.Response {
	var in httpapi.SettleRequest
	if err := httpapi.Decode(r.Body, &in, true); err != nil {
		return httpapi.ErrorResponse(err)
	}
	if err := in.Check(); err != nil {
		return httpapi.ErrorResponse(err)
	}
	lease, err := h.lease(ctx, r)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	if err := end(lease, in); err != nil {
		return httpapi.ErrorResponse(err)
	}
	out := httpapi.LeaseResponse{LeaseID: lease.ID(), State: state}
	if state == httpapi.LeaseCommitted {
		out.Consumed = lease.Consumed() // what the lease keeps; a rolled back one keeps nothing
	}
	return httpapi.JSON(http.StatusOK, out)
}

func (h *handlers) available(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.AvailableRequest
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	req, err := in.Limiter()
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	avail, err := h.l.Available(ctx, req)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(http.StatusOK, httpapi.AvailableResponse{Available: avail})
}

func (h *handlers) timeUntilAvailable(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.TimeUntilAvailableRequest
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	req, needed, err := in.Limiter()
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	d, err := h.l.TimeUntilAvailable(ctx, req, needed)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(http.StatusOK, httpapi.TimeUntilAvailableResponse{RetryAfterSeconds: d.Seconds(), RetryAfterMs: d.Milliseconds()})
}
