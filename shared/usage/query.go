package usage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Window is the length of a snapshot's window: Hourly or Daily, aligned to UTC.
type Window = storage.Window

// The snapshot windows.
const (
	Hourly = storage.WindowHourly
	Daily  = storage.WindowDaily
)

// Page sizes of the queries.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Snapshot is the usage of one entity on one resource in one window.
//
// Counters are in whole tokens, the unit of every limit in the public API: the stored exact
// millitokens divided by 1000, truncated toward zero. Consumption is charged in whole tokens,
// so the division is exact unless fractional amounts were charged; MilliCounters holds the
// exact stored values for billing that needs them. Both are 128-bit integers, which hold every
// integer DynamoDB stores: a window's total may exceed 2^63 millitokens (9,224 adjustments of
// the largest amount an adjustment may give).
type Snapshot struct {
	EntityID      string
	Resource      string
	Window        Window
	WindowStart   time.Time                     // UTC
	Counters      map[string]tokenbucket.Int128 // net tokens consumed in the window, by limit name
	MilliCounters map[string]tokenbucket.Int128 // the same in millitokens, exact
	Acquires      int64                         // net acquires (acquires − rollbacks) in the window
}

// Page is one page of a usage query. NextToken is empty on the last page; otherwise pass it to
// the same query for the next page. A page may hold fewer than the limit asked for even when
// more follow.
type Page struct {
	Snapshots []Snapshot
	NextToken string
}

// Names of the arguments a *limiter.ValidationError of a query can name (its Field).
const (
	ArgEntity    = "entity_id"
	ArgResource  = "resource"
	ArgWindow    = "window"
	ArgRange     = "from/to"
	ArgLimit     = "limit"
	ArgNextToken = "next_token"
)

// invalid reports an argument that cannot be used, as the library's one invalid-input error
// (an HTTP 400 invalid_request naming the argument). Nothing was read.
func invalid(arg, format string, args ...any) error {
	return &limiter.ValidationError{Field: arg, Message: fmt.Sprintf(format, args...)}
}

// Reader reads usage snapshots for the admin API.
type Reader struct {
	table *storage.Table
}

// NewReader returns a reader of the snapshots in table.
func NewReader(table *storage.Table) *Reader { return &Reader{table: table} }

// NewTableReader returns a Reader of the limiter table named table, through client.
func NewTableReader(client storage.Client, table string) *Reader {
	return NewReader(storage.New(client, table))
}

// QueryEntityUsage returns the snapshots of entity of one window kind whose windows overlap
// [from, to]: window_start from the start of the window containing from up to to, inclusive.
// With resource set it reads that resource only (a key range); with resource "" every resource
// of the entity (the entity's snapshots are read and filtered, so prefer a resource for long
// histories). Snapshots come by resource, then time. limit 0 means DefaultLimit; at most
// MaxLimit. nextToken is "" or a Page.NextToken of the same query.
func (r *Reader) QueryEntityUsage(ctx context.Context, entity, resource string, window Window, from, to time.Time, limit int, nextToken string) (Page, error) {
	if err := storage.ValidateID(entity); err != nil {
		return Page{}, invalid(ArgEntity, "%v", err)
	}
	if resource != "" {
		if err := storage.ValidateID(resource); err != nil {
			return Page{}, invalid(ArgResource, "%v", err)
		}
	}
	id := tokenQuery{EntityID: entity, Resource: resource, Window: string(window)}
	q, err := query(id, window, from, to, limit, nextToken)
	if err != nil {
		return Page{}, err
	}
	// Without a resource the page may end on a snapshot the filter dropped, of another window.
	if c := q.After; c != nil && (c.EntityID != entity || (resource != "" && (c.Resource != resource || c.Window != window))) {
		return Page{}, invalid(ArgNextToken, "the token belongs to another query")
	}
	q.EntityID, q.Resource = entity, resource
	return r.run(ctx, q, id)
}

// QueryResourceUsage returns the snapshots of every entity on resource, of one window kind,
// whose windows overlap [from, to] (see QueryEntityUsage), in time order and by entity within a
// window. It reads the table's GSI2, which is eventually consistent. limit and nextToken are as
// for QueryEntityUsage.
func (r *Reader) QueryResourceUsage(ctx context.Context, resource string, window Window, from, to time.Time, limit int, nextToken string) (Page, error) {
	if err := storage.ValidateID(resource); err != nil {
		return Page{}, invalid(ArgResource, "%v", err)
	}
	id := tokenQuery{Resource: resource, Window: string(window)}
	q, err := query(id, window, from, to, limit, nextToken)
	if err != nil {
		return Page{}, err
	}
	if c := q.After; c != nil && (c.Resource != resource || c.Window != window) {
		return Page{}, invalid(ArgNextToken, "the token belongs to another query")
	}
	q.Resource = resource
	return r.run(ctx, q, id)
}

// query validates the arguments common to both queries; id names the query a token must come
// from.
func query(id tokenQuery, window Window, from, to time.Time, limit int, nextToken string) (storage.UsageQuery, error) {
	if !window.Valid() {
		return storage.UsageQuery{}, invalid(ArgWindow, "%q is not %q or %q", window, Hourly, Daily)
	}
	if to.Before(from) {
		return storage.UsageQuery{}, invalid(ArgRange, "from %s is after to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return storage.UsageQuery{}, invalid(ArgLimit, "%d is not between 1 and %d", limit, MaxLimit)
	}
	q := storage.UsageQuery{Window: window, Limit: limit, From: window.Start(clamp(from)), To: clamp(to)}
	if nextToken != "" {
		c, err := decodeToken(nextToken, id)
		if err != nil {
			return storage.UsageQuery{}, err
		}
		q.After = c
	}
	return q, nil
}

// clamp returns t in Unix ms, within the instants a window_start can express.
func clamp(t time.Time) int64 {
	switch {
	case t.Before(time.UnixMilli(storage.MinUsageMillis)):
		return storage.MinUsageMillis
	case t.After(time.UnixMilli(storage.MaxUsageMillis)):
		return storage.MaxUsageMillis
	}
	return t.UnixMilli()
}

func (r *Reader) run(ctx context.Context, q storage.UsageQuery, id tokenQuery) (Page, error) {
	p, err := r.table.QueryUsage(ctx, q)
	if err != nil {
		return Page{}, err
	}
	out := Page{Snapshots: make([]Snapshot, 0, len(p.Snapshots))}
	for _, s := range p.Snapshots {
		out.Snapshots = append(out.Snapshots, toSnapshot(s))
	}
	if p.Next != nil {
		out.NextToken = encodeToken(*p.Next, id)
	}
	return out, nil
}

// toSnapshot returns a stored snapshot in the units of the API.
func toSnapshot(s storage.UsageSnapshot) Snapshot {
	snap := Snapshot{
		EntityID: s.EntityID, Resource: s.Resource, Window: s.Window,
		WindowStart:   time.UnixMilli(s.WindowStart).UTC(),
		Counters:      make(map[string]tokenbucket.Int128, len(s.Counters)),
		MilliCounters: s.Counters,
		Acquires:      s.Acquires,
	}
	for name, v := range s.Counters {
		snap.Counters[name] = v.Quo(tokenbucket.MillitokensPerToken)
	}
	return snap
}

// token is the JSON inside a next token: the query it continues and the last snapshot a page
// returned (or the last key the query evaluated). It names a snapshot, not a DynamoDB key, so a
// token says nothing about the table's layout and is checked field by field when it comes back.
//
// The query is the entity, resource and window, not the time range: a client that pages the
// default range (which ends now) continues where it was even when the range moved meanwhile;
// snapshots that left the range are not returned, those that entered it after the token's
// position are. A token of another query is refused: the entity-wide query resumes after any
// snapshot of the entity's partition, so a token of another window or resource would silently
// skip snapshots.
type token struct {
	Query       tokenQuery `json:"q"`
	EntityID    string     `json:"e"`
	Resource    string     `json:"r"`
	Window      string     `json:"w"`
	WindowStart string     `json:"s"`
}

// tokenQuery names a query: an entity's (Resource "" for every resource) or a resource's
// (EntityID "").
type tokenQuery struct {
	EntityID string `json:"e,omitempty"`
	Resource string `json:"r,omitempty"`
	Window   string `json:"w"`
}

// maxTokenLength bounds a token before it is decoded: four ids of 256 characters and a little,
// in base64.
const maxTokenLength = 2048

func encodeToken(c storage.UsageCursor, q tokenQuery) string {
	b, _ := json.Marshal(token{Query: q, EntityID: c.EntityID, Resource: c.Resource, Window: string(c.Window), WindowStart: storage.FormatWindowStart(c.WindowStart)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string, q tokenQuery) (*storage.UsageCursor, error) {
	if len(s) > maxTokenLength {
		return nil, invalid(ArgNextToken, "too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, invalid(ArgNextToken, "not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var t token
	if err := dec.Decode(&t); err != nil || dec.More() {
		return nil, invalid(ArgNextToken, "not a token")
	}
	if t.Query != q {
		return nil, invalid(ArgNextToken, "the token belongs to another query")
	}
	w := Window(t.Window)
	if storage.ValidateID(t.EntityID) != nil || storage.ValidateID(t.Resource) != nil || !w.Valid() {
		return nil, invalid(ArgNextToken, "not a token")
	}
	ws, err := storage.ParseWindowStart(t.WindowStart)
	if err != nil || w.Start(ws) != ws {
		return nil, invalid(ArgNextToken, "not a token")
	}
	return &storage.UsageCursor{EntityID: t.EntityID, Resource: t.Resource, Window: w, WindowStart: ws}, nil
}
