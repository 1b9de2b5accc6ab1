package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// ErrAdminNeedsHTTP is returned by the admin calls of a client made with NewLambda: the admin
// function is reached over HTTP only.
var ErrAdminNeedsHTTP = errors.New("client: admin calls need a client made with NewHTTP")

// The admin calls (entities, stored limits, usage, audit) speak the admin function's routes
// (docs/openapi.yaml). They are idempotent and retried like Commit; a DELETE whose first answer
// was lost therefore reports the entity or limits as not found on its retry.

// admin sends an admin call and decodes a 2xx answer into out; it returns the status.
func (c *Client) admin(ctx context.Context, method, path string, body, out any) (int, error) {
	if _, ok := c.t.(*httpTransport); !ok {
		return 0, ErrAdminNeedsHTTP
	}
	status := 0
	err := c.do(ctx, true, call{action: method + " " + path, path: path, method: method, body: body}, &statusOut{out: out, status: &status})
	return status, err
}

// statusOut asks once for the answer's status besides its body (decoded into out).
type statusOut struct {
	out    any
	status *int
}

// PutEntity creates the entity, or replaces the name, cascade and metadata of the existing one
// (its parent cannot change: ErrParentImmutable). created tells which.
func (c *Client) PutEntity(ctx context.Context, e wire.Entity) (ent *wire.Entity, created bool, err error) {
	body := wire.EntityRequest{Name: e.Name, Cascade: e.Cascade, Metadata: e.Metadata}
	if e.ParentID != "" {
		body.ParentID = &e.ParentID
	}
	var out wire.EntityJSON
	status, err := c.admin(ctx, http.MethodPut, "/v1/entities/"+url.PathEscape(e.ID), body, &out)
	if err != nil {
		return nil, false, err
	}
	return entityOf(out), status == http.StatusCreated, nil
}

// GetEntity returns the entity, or an error matching ErrEntityNotFound.
func (c *Client) GetEntity(ctx context.Context, id string) (*wire.Entity, error) {
	var out wire.EntityJSON
	if _, err := c.admin(ctx, http.MethodGet, "/v1/entities/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return entityOf(out), nil
}

// DeleteEntity deletes the entity with its stored limits and buckets; an entity with children
// is refused (ErrHasChildren).
func (c *Client) DeleteEntity(ctx context.Context, id string) error {
	_, err := c.admin(ctx, http.MethodDelete, "/v1/entities/"+url.PathEscape(id), nil, nil)
	return err
}

// Children returns the children of a parent entity.
func (c *Client) Children(ctx context.Context, id string) ([]wire.Entity, error) {
	var out wire.ChildrenResponse
	if _, err := c.admin(ctx, http.MethodGet, "/v1/entities/"+url.PathEscape(id)+"/children", nil, &out); err != nil {
		return nil, err
	}
	kids := make([]wire.Entity, 0, len(out.Children))
	for _, k := range out.Children {
		kids = append(kids, *entityOf(k))
	}
	return kids, nil
}

// LimitsPath returns the admin route of a scope's stored limits.
func LimitsPath(sc wire.Scope) string {
	switch {
	case sc.EntityID != "" && sc.Resource != "":
		return "/v1/entities/" + url.PathEscape(sc.EntityID) + "/limits/" + url.PathEscape(sc.Resource)
	case sc.EntityID != "":
		return "/v1/entities/" + url.PathEscape(sc.EntityID) + "/limits/_default_"
	case sc.Resource != "":
		return "/v1/resources/" + url.PathEscape(sc.Resource) + "/limits"
	}
	return "/v1/system/limits"
}

// SetLimits stores the limits of a scope, replacing what was there; created is true when the
// scope had none. Setting the limits already stored changes nothing (and records nothing).
func (c *Client) SetLimits(ctx context.Context, sc wire.Scope, limits []wire.Limit) (created bool, err error) {
	status, err := c.admin(ctx, http.MethodPut, LimitsPath(sc), wire.LimitsBody{Limits: wire.LimitsJSON(limits)}, nil)
	return status == http.StatusCreated, err
}

// GetLimits returns the limits stored for exactly this scope, or an error matching
// ErrLimitsNotFound.
func (c *Client) GetLimits(ctx context.Context, sc wire.Scope) ([]wire.Limit, error) {
	var out wire.LimitsBody
	if _, err := c.admin(ctx, http.MethodGet, LimitsPath(sc), nil, &out); err != nil {
		return nil, err
	}
	ls, err := out.Limiter()
	if err != nil {
		return nil, err
	}
	return ls, nil
}

// DeleteLimits deletes the limits stored for a scope (ErrLimitsNotFound when there are none).
func (c *Client) DeleteLimits(ctx context.Context, sc wire.Scope) error {
	_, err := c.admin(ctx, http.MethodDelete, LimitsPath(sc), nil, nil)
	return err
}

// AuditLog returns one page of a scope's audit trail, newest first (see limiter.Limiter.AuditLog for
// which scope holds what): limit records at most (0: the server's default, 100).
func (c *Client) AuditLog(ctx context.Context, sc wire.Scope, limit int, nextToken string) (*wire.AuditPage, error) {
	path := "/v1/system/audit"
	switch {
	case sc.EntityID != "":
		path = "/v1/entities/" + url.PathEscape(sc.EntityID) + "/audit"
	case sc.Resource != "":
		path = "/v1/resources/" + url.PathEscape(sc.Resource) + "/audit"
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if nextToken != "" {
		q.Set("next_token", nextToken)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Records   []wire.AuditRecord `json:"records"`
		NextToken string             `json:"next_token"`
	}
	if _, err := c.admin(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &wire.AuditPage{Records: out.Records, NextToken: out.NextToken}, nil
}

// UsageQuery selects usage snapshots: an entity's (EntityID, optionally one Resource) or a
// resource's (Resource only), of one window ("hourly" or "daily"), between From and To (zero:
// the server's defaults, the last day of hours or 30 days).
type UsageQuery struct {
	EntityID string
	Resource string
	Window   string
	From, To time.Time
}

// UsageSnapshot is one window of an entity's use of a resource: net whole tokens consumed by
// limit name, and net acquires.
type UsageSnapshot struct {
	EntityID    string           `json:"entity_id"`
	Resource    string           `json:"resource"`
	Window      string           `json:"window"`
	WindowStart time.Time        `json:"window_start"`
	Counters    map[string]int64 `json:"counters"`
	Acquires    int64            `json:"acquires"`
}

// Usage returns every snapshot of q, following the pages.
func (c *Client) Usage(ctx context.Context, q UsageQuery) ([]UsageSnapshot, error) {
	path := "/v1/resources/" + url.PathEscape(q.Resource) + "/usage"
	v := url.Values{}
	if q.EntityID != "" {
		path = "/v1/entities/" + url.PathEscape(q.EntityID) + "/usage"
		if q.Resource != "" {
			v.Set("resource", q.Resource)
		}
	}
	if q.Window != "" {
		v.Set("window", q.Window)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339))
	}
	var all []UsageSnapshot
	for {
		var page struct {
			Snapshots []UsageSnapshot `json:"snapshots"`
			NextToken string          `json:"next_token"`
		}
		p := path
		if len(v) > 0 {
			p += "?" + v.Encode()
		}
		if _, err := c.admin(ctx, http.MethodGet, p, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Snapshots...)
		if page.NextToken == "" {
			return all, nil
		}
		v.Set("next_token", page.NextToken)
	}
}

func entityOf(e wire.EntityJSON) *wire.Entity {
	md := e.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return &wire.Entity{ID: e.ID, Name: e.Name, ParentID: e.ParentID, Cascade: e.Cascade, Metadata: md,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}
