package adminapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// ForLimiter returns the admin function over lim: New with the usage routes reading snapshots
// through reader (usage.NewTableReader of lim's table), the audit routes and the usage dashboard.
func ForLimiter(lim *limiter.Limiter, reader UsageReader, log *slog.Logger) *httpapi.Router {
	extra := append(UsageRoutes(reader, time.Now), AuditRoutes(lim)...)
	return New(lim, log, append(extra, DashboardRoutes()...)...)
}

// UsageReader reads usage snapshots (package usage's Reader implements it).
type UsageReader interface {
	QueryEntityUsage(ctx context.Context, entity, resource string, window usage.Window, from, to time.Time, limit int, nextToken string) (usage.Page, error)
	QueryResourceUsage(ctx context.Context, resource string, window usage.Window, from, to time.Time, limit int, nextToken string) (usage.Page, error)
}

// Default ranges of a usage query without from: the last day of hourly snapshots, the last
// 30 days of daily ones.
const (
	DefaultHourlyRange = 24 * time.Hour
	DefaultDailyRange  = 30 * 24 * time.Hour
)

// UsageRoutes returns the usage routes over r, with now the clock of default ranges:
//
//	GET /v1/entities/{entity_id}/usage?resource=&window=&from=&to=&limit=&next_token=
//	GET /v1/resources/{resource}/usage?window=&from=&to=&limit=&next_token=
func UsageRoutes(r UsageReader, now func() time.Time) []httpapi.Route {
	h := &usageHandlers{r: r, now: now}
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: PathEntityUsage, Handler: h.entity},
		{Method: http.MethodGet, Pattern: PathResourceUsage, Handler: h.resource},
	}
}

type usageHandlers struct {
	r   UsageReader
	now func() time.Time
}

// UsageSnapshot is the JSON form of usage.Snapshot.
type UsageSnapshot struct {
	EntityID    string                        `json:"entity_id"`
	Resource    string                        `json:"resource"`
	Window      string                        `json:"window"`
	WindowStart time.Time                     `json:"window_start"`
	Counters    map[string]tokenbucket.Int128 `json:"counters"` // JSON integers, exact in any size
	Acquires    int64                         `json:"acquires"`
}

// UsageResponse is the 200 body of the usage routes: one page of snapshots.
type UsageResponse struct {
	Snapshots []UsageSnapshot `json:"snapshots"`
	NextToken string          `json:"next_token,omitempty"`
}

// usageQuery is the query string of a usage route.
type usageQuery struct {
	window    usage.Window
	from, to  time.Time
	limit     int
	nextToken string
}

func (h *usageHandlers) query(r *httpapi.Request) (usageQuery, error) {
	known := map[string]bool{"resource": r.Route == PathEntityUsage, "window": true, "from": true, "to": true, "limit": true, "next_token": true}
	for k, v := range r.Query {
		if !known[k] {
			return usageQuery{}, httpapi.Invalid(k, "unknown query parameter")
		}
		if len(v) > 1 {
			return usageQuery{}, httpapi.Invalid(k, "give it once")
		}
	}
	q := usageQuery{window: usage.Hourly, to: h.now().UTC(), nextToken: r.Query.Get("next_token")}
	if w := r.Query.Get("window"); w != "" {
		q.window = usage.Window(w) // the reader validates it
	}
	var err error
	if v := r.Query.Get("to"); v != "" {
		if q.to, err = time.Parse(time.RFC3339, v); err != nil {
			return q, httpapi.Invalid("to", "must be an RFC 3339 time such as 2026-11-26T20:00:00Z")
		}
	}
	q.from = q.to.Add(-DefaultHourlyRange)
	if q.window == usage.Daily {
		q.from = q.to.Add(-DefaultDailyRange)
	}
	if v := r.Query.Get("from"); v != "" {
		if q.from, err = time.Parse(time.RFC3339, v); err != nil {
			return q, httpapi.Invalid("from", "must be an RFC 3339 time such as 2026-11-26T00:00:00Z")
		}
	}
	if v := r.Query.Get("limit"); v != "" {
		if q.limit, err = strconv.Atoi(v); err != nil || q.limit < 1 || q.limit > usage.MaxLimit {
			return q, httpapi.Invalid("limit", "must be 1 to %d", usage.MaxLimit)
		}
	}
	return q, nil
}

func (h *usageHandlers) entity(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	q, err := h.query(r)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	page, err := h.r.QueryEntityUsage(ctx, r.Param("entity_id"), r.Query.Get("resource"), q.window, q.from, q.to, q.limit, q.nextToken)
	return usageAnswer(page, err)
}

func (h *usageHandlers) resource(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	q, err := h.query(r)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	page, err := h.r.QueryResourceUsage(ctx, r.Param("resource"), q.window, q.from, q.to, q.limit, q.nextToken)
	return usageAnswer(page, err)
}

func usageAnswer(page usage.Page, err error) *httpapi.Response {
	var ve *limiter.ValidationError
	switch {
	case errors.As(err, &ve):
		return httpapi.ErrorResponse(err)
	case err != nil:
		return httpapi.ErrorResponse(&limiter.UnavailableError{Op: "query usage", Err: err})
	}
	out := UsageResponse{Snapshots: make([]UsageSnapshot, 0, len(page.Snapshots)), NextToken: page.NextToken}
	for _, s := range page.Snapshots {
		c := s.Counters
		if c == nil {
			c = map[string]tokenbucket.Int128{}
		}
		out.Snapshots = append(out.Snapshots, UsageSnapshot{EntityID: s.EntityID, Resource: s.Resource, Window: string(s.Window),
			WindowStart: s.WindowStart.UTC(), Counters: c, Acquires: s.Acquires})
	}
	return httpapi.JSON(http.StatusOK, out)
}
