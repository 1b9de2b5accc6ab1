// Package adminapi is the admin function: entities and stored limits (and usage queries).
// Its handlers decode with package httpapi, call the limiter, and encode.
package adminapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// Name is the function's name in logs.
const Name = "admin"

// DefaultResource is the reserved resource of /v1/entities/{entity_id}/limits/{resource} that
// names the entity's default limits.
const DefaultResource = limiter.DefaultResource

// Limiter is what the admin function asks of the library: entity and stored-limit CRUD.
// *limiter.Limiter implements it.
type Limiter interface {
	CreateEntity(ctx context.Context, e limiter.Entity) (*limiter.Entity, error)
	GetEntity(ctx context.Context, id string) (*limiter.Entity, error)
	UpdateEntity(ctx context.Context, e limiter.Entity) (*limiter.Entity, error)
	DeleteEntity(ctx context.Context, id string) error
	ListChildren(ctx context.Context, parentID string) ([]limiter.Entity, error)
	SetStoredEntityLimits(ctx context.Context, sc limiter.Scope, limits []limiter.Limit) error
	GetLimits(ctx context.Context, sc limiter.Scope) ([]limiter.Limit, error)
	DeleteLimits(ctx context.Context, sc limiter.Scope) error
}

// Paths of the admin routes.
const (
	PathEntity         = "/v1/entities/{entity_id}"
	PathChildren       = "/v1/entities/{entity_id}/children"
	PathEntityLimits   = "/v1/entities/{entity_id}/limits/{resource}"
	PathResourceLimits = "/v1/resources/{resource}/limits"
	PathSystemLimits   = "/v1/system/limits"
	PathEntityUsage    = "/v1/entities/{entity_id}/usage"
	PathResourceUsage  = "/v1/resources/{resource}/usage"
)

type handlers struct {
	l Limiter
}

// New returns the admin function's router (a lambda.Handler for API Gateway events). extra
// routes are added after the built-in ones: the usage and audit routes (UsageRoutes,
// AuditRoutes; ForLimiter adds them). Every handler runs with the request's limiter.Actor (its
// IAM principal and request id), which the audit records of its changes name.
func New(l Limiter, log *slog.Logger, extra ...httpapi.Route) *httpapi.Router {
	h := &handlers{l: l}
	const get, put, del = http.MethodGet, http.MethodPut, http.MethodDelete
	routes := []httpapi.Route{
		{Method: put, Pattern: PathEntity, Handler: h.putEntity},
		{Method: get, Pattern: PathEntity, Handler: h.getEntity},
		{Method: del, Pattern: PathEntity, Handler: h.deleteEntity},
		{Method: get, Pattern: PathChildren, Handler: h.children},
	}
	for _, p := range []string{PathEntityLimits, PathResourceLimits, PathSystemLimits} {
		routes = append(routes,
			httpapi.Route{Method: put, Pattern: p, Handler: h.putLimits},
			httpapi.Route{Method: get, Pattern: p, Handler: h.getLimits},
			httpapi.Route{Method: del, Pattern: p, Handler: h.deleteLimits},
		)
	}
	// Usage routes (GET PathEntityUsage, GET PathResourceUsage) come in through extra, from
	// UsageRoutes over package usage's Reader.
	routes = append(routes, extra...)
	for i := range routes {
		routes[i].Handler = withActor(routes[i].Handler)
	}
	return httpapi.NewRouter(Name, log, routes, nil)
}

func (h *handlers) putEntity(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.EntityRequest
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	id := r.Param("entity_id")
	e := limiter.Entity{ID: id, Name: in.Name, Cascade: in.Cascade, Metadata: in.Metadata}
	cur, err := h.l.GetEntity(ctx, id)
	if errors.Is(err, limiter.ErrEntityNotFound) {
		if in.ParentID != nil {
			e.ParentID = *in.ParentID
		}
		created, err := h.l.CreateEntity(ctx, e)
		if err == nil {
			resp := httpapi.JSON(http.StatusCreated, httpapi.EntityFrom(created))
			resp.Header["location"] = "/v1/entities/" + url.PathEscape(id)
			return resp
		}
		if !errors.Is(err, limiter.ErrEntityExists) {
			return httpapi.ErrorResponse(err)
		}
		// Created concurrently: update it as if it had been there.
		if cur, err = h.l.GetEntity(ctx, id); err != nil {
			return httpapi.ErrorResponse(err)
		}
	} else if err != nil {
		return httpapi.ErrorResponse(err)
	}
	e.ParentID = cur.ParentID
	if in.ParentID != nil {
		e.ParentID = *in.ParentID // a different parent is refused by UpdateEntity
	}
	updated, err := h.l.UpdateEntity(ctx, e)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(http.StatusOK, httpapi.EntityFrom(updated))
}

func (h *handlers) getEntity(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	e, err := h.l.GetEntity(ctx, r.Param("entity_id"))
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(http.StatusOK, httpapi.EntityFrom(e))
}

func (h *handlers) deleteEntity(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	if err := h.l.DeleteEntity(ctx, r.Param("entity_id")); err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.NoContent()
}

func (h *handlers) children(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	id := r.Param("entity_id")
	if _, err := h.l.GetEntity(ctx, id); err != nil {
		return httpapi.ErrorResponse(err)
	}
	kids, err := h.l.ListChildren(ctx, id)
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	out := httpapi.ChildrenResponse{Children: make([]httpapi.Entity, 0, len(kids))}
	for i := range kids {
		out.Children = append(out.Children, httpapi.EntityFrom(&kids[i]))
	}
	return httpapi.JSON(http.StatusOK, out)
}

// scope returns the scope of stored limits the route names.
func scope(r *httpapi.Request) limiter.Scope {
	switch r.Route {
	case PathEntityLimits:
		if res := r.Param("resource"); res != DefaultResource {
			return limiter.EntityResource(r.Param("entity_id"), res)
		}
		return limiter.EntityDefault(r.Param("entity_id"))
	case PathResourceLimits:
		return limiter.ResourceDefault(r.Param("resource"))
	}
	return limiter.SystemDefault()
}

func (h *handlers) putLimits(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	var in httpapi.LimitsBody
	if err := httpapi.Decode(r.Body, &in, false); err != nil {
		return httpapi.ErrorResponse(err)
	}
	limits, err := in.Limiter()
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	// Limits hang off a stored entity, so that deleting it deletes them: the write checks the
	// entity itself (entity_not_found otherwise), so a delete running at the same time cannot
	// leave them behind.
	sc := scope(r)
	status := http.StatusOK
	switch _, err := h.l.GetLimits(ctx, sc); {
	case errors.Is(err, limiter.ErrLimitsNotFound):
		status = http.StatusCreated
	case err != nil:
		return httpapi.ErrorResponse(err)
	}
	if err := h.l.SetStoredEntityLimits(ctx, sc, limits); err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(status, httpapi.LimitsBody{Limits: httpapi.LimitsFrom(limits)})
}

func (h *handlers) getLimits(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	limits, err := h.l.GetLimits(ctx, scope(r))
	if err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.JSON(http.StatusOK, httpapi.LimitsBody{Limits: httpapi.LimitsFrom(limits)})
}

func (h *handlers) deleteLimits(ctx context.Context, r *httpapi.Request) *httpapi.Response {
	if err := h.l.DeleteLimits(ctx, scope(r)); err != nil {
		return httpapi.ErrorResponse(err)
	}
	return httpapi.NoContent()
}
