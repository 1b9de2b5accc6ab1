package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// DefaultAuditRetention is how long audit records are kept (their TTL) unless
// WithAuditRetention says otherwise.
const DefaultAuditRetention = 365 * 24 * time.Hour

// WithAuditRetention sets how long each audit record is kept before DynamoDB's TTL may delete
// it (default DefaultAuditRetention); d <= 0 keeps records forever.
func WithAuditRetention(d time.Duration) Option { return func(c *config) { c.auditRetention = d } }

// UnknownPrincipal is the principal of a change whose context carries no Actor.
const UnknownPrincipal = "unknown"

// An Actor is who makes the admin changes of a context: the caller's IAM principal (ARN) and
// the request that carries them. The admin API takes both from API Gateway's request context.
type Actor struct {
	Principal string
	RequestID string
}

type actorKey struct{}

// WithActor returns ctx carrying a: the audit records of changes made with it name a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the Actor of ctx, with Principal UnknownPrincipal when there is none.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	if a.Principal == "" {
		a.Principal = UnknownPrincipal
	}
	return a
}

// AuditLog returns up to limit records (1 to 100; 0 means 100) of a scope's log, newest first,
// from nextToken ("" for the first page). An entity's log (sc.EntityID set) holds the entity's
// changes and those of all its stored limits, and outlives the entity; a resource's log
// (Resource only) its resource default; the system log (SystemDefault) the system default. An
// unknown id has an empty log. A malformed or foreign token is a *ValidationError.
func (l *Limiter) AuditLog(ctx context.Context, sc Scope, limit int, nextToken string) (*AuditPage, error) {
	if sc.EntityID != "" {
		sc.Resource = ""
	}
	st, err := storageScope(sc)
	if err != nil {
		return nil, err
	}
	if limit < 0 || limit > storage.MaxAuditPage {
		return nil, invalid("limit", "must be 1 to %d", storage.MaxAuditPage)
	}
	page, err := l.table.QueryAudit(ctx, storage.AuditSubjectOf(st), limit, nextToken)
	if errors.Is(err, storage.ErrInvalidKey) {
		return nil, invalid("next_token", "not a token of this audit log")
	}
	if err != nil {
		return nil, &UnavailableError{Op: "audit log", Err: err}
	}
	out := &AuditPage{Records: make([]AuditRecord, 0, len(page.Records)), NextToken: page.NextToken}
	for _, r := range page.Records {
		rec := AuditRecord{ID: r.ChangeID, At: time.UnixMilli(r.At).UTC(), Principal: r.Principal, RequestID: r.RequestID,
			Action: r.Action, EntityID: r.EntityID, Resource: r.Resource, Version: r.Version}
		if r.Before != "" {
			rec.Before = json.RawMessage(r.Before)
		}
		if r.After != "" {
			rec.After = json.RawMessage(r.After)
		}
		out.Records = append(out.Records, rec)
	}
	return out, nil
}

// entityJSON is the audited form of an entity: what an admin sets (not its timestamps or
// child count, which the limiter keeps).
type entityJSON struct {
	ID       string                    `json:"id"`
	Name     string                    `json:"name"`
	ParentID string                    `json:"parent_id,omitempty"`
	Cascade  bool                      `json:"cascade"`
	Metadata map[string]string         `json:"metadata"`
	Limits   map[string]limitsItemJSON `json:"limits,omitempty"`
}

type limitJSON struct {
	Name           string `json:"name"`
	Capacity       int64  `json:"capacity"`
	RefillAmount   int64  `json:"refill_amount"`
	RefillPeriodMs int64  `json:"refill_period_ms"`
}

type limitsItemJSON struct {
	Limits []limitJSON `json:"limits"`
}

func auditEntity(e *storage.EntityItem, limits map[string]*storage.LimitsItem) string {
	md := e.Metadata
	if md == nil {
		md = map[string]string{}
	}
	j := entityJSON{ID: e.ID, Name: e.Name, ParentID: e.ParentID, Cascade: e.Cascade, Metadata: md}
	if len(limits) > 0 {
		j.Limits = make(map[string]limitsItemJSON, len(limits))
		for res, it := range limits {
			j.Limits[res] = auditLimitsJSON(it.Limits)
		}
	}
	b, _ := json.Marshal(j) // strings, bools and maps of strings: cannot fail
	return string(b)
}

func auditLimitsJSON(cs []storage.LimitConfig) limitsItemJSON {
	out := limitsItemJSON{Limits: make([]limitJSON, 0, len(cs))}
	for _, c := range cs {
		out.Limits = append(out.Limits, limitJSON(c))
	}
	return out
}

func auditLimits(cs []storage.LimitConfig) string {
	b, _ := json.Marshal(auditLimitsJSON(cs))
	return string(b)
}

// change is one audited admin write, computed from the state just read.
type change struct {
	noop bool  // the state already is what the change asks: nothing to write, no record
	prev int64 // updated_at (Unix ms) of the item replaced, 0 if none: the change is later
	rec  storage.AuditRecord
	// write sends the change with rec (rec.At is the change's time).
	write func(ctx context.Context, rec *storage.AuditRecord) error
}

// maxResends is how many times a change whose outcome is unknown (no answer) is sent again,
// with the same change id, before an *UnavailableError.
const maxResends = 2

// audited makes one admin change exactly once with its audit record:
//
//   - compute reads the current state and returns the change (or noop, or an error such as
//     ErrEntityNotFound);
//   - the change and its record go in one transaction, conditional on the state read (its
//     version);
//   - no answer (a lost response, a timeout, a server fault; see unanswered): the same
//     transaction is sent again, same change id. DynamoDB's idempotency token (the change id) or, after its 10 minutes, the record's
//     own condition proves whether the first one applied, so it applies once;
//   - refused because the state changed (another admin, storage.ErrStale) or a transaction
//     conflict: read again and recompute, with a new change id, up to the limiter's
//     WithMaxAttempts. Every record therefore holds the exact state it replaced.
func (l *Limiter) audited(ctx context.Context, op string, compute func(ctx context.Context) (*change, error)) error {
	actor := ActorFrom(ctx)
	var last error
	for attempt := range l.maxAttempts {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return &UnavailableError{Op: op, Err: errors.Join(last, err)}
			}
		}
		c, err := compute(ctx)
		if err != nil || c.noop {
			return err
		}
		rec := c.rec
		rec.ChangeID = newChangeID()
		rec.At = max(l.nowMs(), c.prev+1)
		rec.Principal, rec.RequestID = actor.Principal, actor.RequestID
		if l.auditRetention > 0 {
			rec.ExpiresAt = (rec.At + l.auditRetention.Milliseconds()) / 1000
		}
		for send := 0; ; send++ {
			err = c.write(ctx, &rec)
			if err == nil {
				return nil
			}
			if !unanswered(err) || send >= maxResends || ctx.Err() != nil {
				break
			}
			l.log.WarnContext(ctx, "admin change unanswered; sending it again", "op", op, "change_id", rec.ChangeID, "error", err.Error())
		}
		if !errors.Is(err, storage.ErrStale) && !errors.Is(err, storage.ErrConflict) {
			return mapStorageErr(op, err)
		}
		last = err
	}
	return &UnavailableError{Op: op, Err: fmt.Errorf("still contended after %d attempts: %w", l.maxAttempts, last)}
}

// unanswered reports whether err leaves the outcome of a write unknown: no answer came (a
// connection lost after the request was sent, a timeout, an answer cut short) or DynamoDB
// answered with a server fault. Refusals (conditions, validation, access) are answers.
func unanswered(err error) bool {
	var (
		send *smithyhttp.RequestSendError
		ne   net.Error
		api  smithy.APIError
		re   interface{ RetryableError() bool } // a transport's own "no answer" errors
	)
	switch {
	case errors.As(err, &send), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &api):
		return api.ErrorFault() == smithy.FaultServer
	}
	return errors.As(err, &re)
}

func newChangeID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
