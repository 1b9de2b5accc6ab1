package wire

import (
	"encoding/json"
	"time"
)

// FailureMode says what Acquire does when DynamoDB cannot be reached or refuses a request.
type FailureMode int

const (
	// FailureModeDefault uses the limiter's mode (FailClosed unless limiter.WithFailureMode says
	// otherwise). It is the zero value of AcquireRequest.FailureMode.
	FailureModeDefault FailureMode = iota
	// FailClosed returns an *UnavailableError: no request is admitted unchecked.
	FailClosed
	// FailOpen admits the request with a degraded lease that writes nothing.
	FailOpen
)

// Cascade says whether an acquire also consumes from the entity's parent.
type Cascade int

const (
	// CascadeDefault follows the entity's stored cascade setting (false for an entity that is
	// not stored). It is the zero value of AcquireRequest.Cascade.
	CascadeDefault Cascade = iota
	// CascadeOn consumes from the parent too, when the entity has one.
	CascadeOn
	// CascadeOff consumes from the entity alone.
	CascadeOff
)

// AcquireRequest describes one acquire.
type AcquireRequest struct {
	EntityID string
	Resource string
	// Limits are the limits to check. With UseStoredLimits they are the fallback when nothing is
	// stored for the entity, the resource or the system.
	Limits []Limit
	// Consume maps limit names to whole tokens to take (≥ 0). Every name must be a limit of the
	// entity; a limit not named is checked for nothing.
	Consume         map[string]int64
	Cascade         Cascade
	UseStoredLimits bool
	FailureMode     FailureMode
	// LeaseTTL, when positive, stores the lease in the table so that any process can resume it
	// by id with limiter.Limiter.Lease until it expires. At most MaxLeaseTTL. The lease lives in
	// the entity's bucket item, written by the same UpdateItem as the consumption (with cascade,
	// the same two-item transaction of the entity's and the parent's buckets), and each later
	// change of it likewise; in a bucket holding limiter.MaxInlineLeases already, or (with a
	// RequestID) one that sent a request-bound lease to a lease item which has not expired, it
	// is an item of its own written in the same transaction as the consumption (one more item
	// per write).
	LeaseTTL time.Duration
	// RequestID makes a retried acquire idempotent: an acquire with the same principal, entity,
	// resource and request id returns the lease of the first and consumes nothing, until that
	// lease expires (a lease in its bucket item: or until storage.TombstoneMs after it was
	// settled or rolled back; then ErrLeaseNotFound or a new acquire). It needs LeaseTTL.
	RequestID string
	// Principal is the identity of the caller (such as the IAM principal's ARN behind an API),
	// "" when there is only one. Request ids are scoped to it: the same request id from another
	// principal is another acquire, so a replay never hands a lease (whose id is what settles
	// it) to anyone but its creator.
	Principal string
}

// MaxLeaseTTL is the longest a stored lease lives.
const MaxLeaseTTL = 24 * time.Hour

// MaxRequestIDLength is the longest request id.
const MaxRequestIDLength = 256

// MaxIdempotencyKeyLength is the longest idempotency key.
const MaxIdempotencyKeyLength = 128

// AvailableRequest names the limits of an entity+resource to look at.
type AvailableRequest struct {
	EntityID        string
	Resource        string
	Limits          []Limit // the limits, or the fallback with UseStoredLimits
	UseStoredLimits bool
}

// An Entity is something limits apply to: a project, or an API key under a project. The
// hierarchy has two levels: a child's parent is a root. With cascade, an acquire for a child
// also consumes from its parent.
type Entity struct {
	ID       string
	Name     string
	ParentID string // "" for a root; fixed at creation
	// Cascade is the entity's default for AcquireRequest.Cascade (CascadeDefault).
	Cascade   bool
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Scope names a set of stored limits. Resolution with AcquireRequest.UseStoredLimits takes the
// first that exists of: entity+resource, entity default, resource default, system default; and
// then the limits given in the call.
type Scope struct {
	EntityID string // "" for a resource or system default
	Resource string // "" for an entity or system default
}

// EntityResource is the scope of one entity's limits for one resource.
func EntityResource(entityID, resource string) Scope { return Scope{entityID, resource} }

// EntityDefault is the scope of an entity's limits for every resource without its own.
func EntityDefault(entityID string) Scope { return Scope{EntityID: entityID} }

// ResourceDefault is the scope of a resource's limits for every entity without its own.
func ResourceDefault(resource string) Scope { return Scope{Resource: resource} }

// SystemDefault is the scope of the limits that apply when nothing more specific is stored.
func SystemDefault() Scope { return Scope{} }

// Actions of audit records.
const (
	AuditCreateEntity = "create_entity"
	AuditUpdateEntity = "update_entity"
	AuditDeleteEntity = "delete_entity"
	AuditSetLimits    = "set_limits"
	AuditDeleteLimits = "delete_limits"
)

// An AuditRecord is one admin change: who made it, when, and the state of what it changed
// before and after, as JSON (absent for an item that did not exist, or no longer does). It
// was written in the same DynamoDB transaction as the change itself, so a change without a
// record, or a record without its change, cannot exist.
//
// Before and After of an entity are {"id","name","parent_id","cascade","metadata"} (a deleted
// entity's Before also holds "limits": its stored limits by resource, deleted with it); of
// stored limits {"limits":[{"name","capacity","refill_amount","refill_period_ms"}]}.
type AuditRecord struct {
	ID        string          `json:"id"` // 32 hex digits
	At        time.Time       `json:"at"`
	Principal string          `json:"principal"`
	RequestID string          `json:"request_id,omitempty"`
	Action    string          `json:"action"` // one of the Audit* constants
	EntityID  string          `json:"entity_id,omitempty"`
	Resource  string          `json:"resource,omitempty"` // of a limits change; "_default_" for an entity default
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	// Version is the changed item's version after the change (0 after a delete): an entity's
	// or a scope's changes have consecutive versions, in the order they applied.
	Version int64 `json:"version"`
}

// AuditPage is one page of an audit log, newest first.
type AuditPage struct {
	Records   []AuditRecord
	NextToken string // "" on the last page
}
