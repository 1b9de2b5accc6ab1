package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// Paths of the audit routes.
const (
	PathEntityAudit   = "/v1/entities/{entity_id}/audit"
	PathResourceAudit = "/v1/resources/{resource}/audit"
	PathSystemAudit   = "/v1/system/audit"
)

// AuditReader reads audit logs (*limiter.Limiter implements it).
type AuditReader interface {
	AuditLog(ctx context.Context, sc limiter.Scope, limit int, nextToken string) (*limiter.AuditPage, error)
}

// AuditResponse is the 200 body of the audit routes: one page of records, newest first.
type AuditResponse struct {
	Records   []limiter.AuditRecord `json:"records"`
	NextToken string                `json:"next_token,omitempty"`
}

// AuditRoutes returns the audit routes over r:
//
//	GET /v1/entities/{entity_id}/audit?limit=&next_token=   the entity's and its limits' changes
//	GET /v1/resources/{resource}/audit?limit=&next_token=   the resource default's
//	GET /v1/system/audit?limit=&next_token=                 the system default's
func AuditRoutes(r AuditReader) []httpapi.Route {
	h := func(ctx context.Context, req *httpapi.Request) *httpapi.Response {
		for k, v := range req.Query {
			if k != "limit" && k != "next_token" {
				return httpapi.ErrorResponse(httpapi.Invalid(k, "unknown query parameter"))
			}
			if len(v) > 1 {
				return httpapi.ErrorResponse(httpapi.Invalid(k, "give it once"))
			}
		}
		limit := 0
		if v := req.Query.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return httpapi.ErrorResponse(httpapi.Invalid("limit", "must be 1 to 100"))
			}
			limit = n
		}
		sc := limiter.SystemDefault()
		switch req.Route {
		case PathEntityAudit:
			sc = limiter.EntityDefault(req.Param("entity_id"))
		case PathResourceAudit:
			sc = limiter.ResourceDefault(req.Param("resource"))
		}
		page, err := r.AuditLog(ctx, sc, limit, req.Query.Get("next_token"))
		if err != nil {
			return httpapi.ErrorResponse(err)
		}
		return httpapi.JSON(http.StatusOK, AuditResponse{Records: page.Records, NextToken: page.NextToken})
	}
	return []httpapi.Route{
		{Method: http.MethodGet, Pattern: PathEntityAudit, Handler: h},
		{Method: http.MethodGet, Pattern: PathResourceAudit, Handler: h},
		{Method: http.MethodGet, Pattern: PathSystemAudit, Handler: h},
	}
}

// withActor passes the request's principal and id to the limiter, which writes them in the
// audit record of every change the request makes.
func withActor(next httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(ctx context.Context, r *httpapi.Request) *httpapi.Response {
		return next(limiter.WithActor(ctx, limiter.Actor{Principal: r.Principal, RequestID: r.RequestID}), r)
	}
}

// EnvAuditRetentionDays names the admin function's environment variable that sets how many
// days audit records are kept (their TTL): a whole number, 0 to keep them forever. Unset:
// limiter.DefaultAuditRetention.
const EnvAuditRetentionDays = "AUDIT_RETENTION_DAYS"

// AuditRetention returns the limiter option EnvAuditRetentionDays asks for (none when unset),
// or an error naming the variable when its value is not a whole number of days.
func AuditRetention(getenv func(string) string) ([]limiter.Option, error) {
	v := getenv(EnvAuditRetentionDays)
	if v == "" {
		return nil, nil
	}
	days, err := strconv.Atoi(v)
	if err != nil || days < 0 || days > 100*365 {
		return nil, fmt.Errorf("%s=%q: want a whole number of days, 0 to 36500", EnvAuditRetentionDays, v)
	}
	return []limiter.Option{limiter.WithAuditRetention(time.Duration(days) * 24 * time.Hour)}, nil
}
