package limiter

import (
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The value types, bounds and errors the limiter shares with its API and its Go client live in
// package wire (which imports only the standard library, so a client compiles in neither the
// limiter nor DynamoDB's SDK). They are the same types under the limiter's names: a
// limiter.Limit is a wire.Limit, and errors.Is and errors.As match either name.

// Limits, calls and their bounds (see wire.Limit).
type (
	// Limit is a token bucket: see wire.Limit.
	Limit = wire.Limit
	// LimitStatus is the state of one limit at a decision: see wire.LimitStatus.
	LimitStatus = wire.LimitStatus
	// StatusJSON is the JSON form of a LimitStatus: see wire.StatusJSON.
	StatusJSON = wire.StatusJSON
	// FailureMode says what Acquire does when DynamoDB fails: see wire.FailureMode.
	FailureMode = wire.FailureMode
	// Cascade says whether an acquire also consumes from the parent: see wire.Cascade.
	Cascade = wire.Cascade
	// AcquireRequest describes one acquire: see wire.AcquireRequest.
	AcquireRequest = wire.AcquireRequest
	// AvailableRequest names the limits to look at: see wire.AvailableRequest.
	AvailableRequest = wire.AvailableRequest
	// Entity is something limits apply to: see wire.Entity.
	Entity = wire.Entity
	// Scope names a set of stored limits: see wire.Scope.
	Scope = wire.Scope
	// AuditRecord is one admin change: see wire.AuditRecord.
	AuditRecord = wire.AuditRecord
	// AuditPage is one page of an audit log: see wire.AuditPage.
	AuditPage = wire.AuditPage
)

// Bounds of what a limit, a call and a lease may hold (see package wire).
const (
	MaxLimits               = wire.MaxLimits
	MaxTokens               = wire.MaxTokens
	MaxRefillPeriod         = wire.MaxRefillPeriod
	MinRefillPeriod         = wire.MinRefillPeriod
	MaxNameLength           = wire.MaxNameLength
	MaxLeaseTokens          = wire.MaxLeaseTokens
	MaxLeaseTTL             = wire.MaxLeaseTTL
	MaxRequestIDLength      = wire.MaxRequestIDLength
	MaxIdempotencyKeyLength = wire.MaxIdempotencyKeyLength
)

// Failure modes and cascade settings of an AcquireRequest (see wire.FailureMode and
// wire.Cascade).
const (
	FailureModeDefault = wire.FailureModeDefault
	FailClosed         = wire.FailClosed
	FailOpen           = wire.FailOpen
	CascadeDefault     = wire.CascadeDefault
	CascadeOn          = wire.CascadeOn
	CascadeOff         = wire.CascadeOff
)

// Actions of audit records.
const (
	AuditCreateEntity = wire.AuditCreateEntity
	AuditUpdateEntity = wire.AuditUpdateEntity
	AuditDeleteEntity = wire.AuditDeleteEntity
	AuditSetLimits    = wire.AuditSetLimits
	AuditDeleteLimits = wire.AuditDeleteLimits
)

// NewLimit returns a limit of capacity tokens refilling refillAmount every refillPeriod.
func NewLimit(name string, capacity, refillAmount int64, refillPeriod time.Duration) Limit {
	return wire.NewLimit(name, capacity, refillAmount, refillPeriod)
}

// PerSecond returns a limit of rate tokens per second with a burst of rate.
func PerSecond(name string, rate int64) Limit { return wire.PerSecond(name, rate) }

// PerMinute returns a limit of rate tokens per minute with a burst of rate.
func PerMinute(name string, rate int64) Limit { return wire.PerMinute(name, rate) }

// PerHour returns a limit of rate tokens per hour with a burst of rate.
func PerHour(name string, rate int64) Limit { return wire.PerHour(name, rate) }

// PerDay returns a limit of rate tokens per day with a burst of rate.
func PerDay(name string, rate int64) Limit { return wire.PerDay(name, rate) }

// EntityResource is the scope of one entity's limits for one resource.
func EntityResource(entityID, resource string) Scope { return wire.EntityResource(entityID, resource) }

// EntityDefault is the scope of an entity's limits for every resource without its own.
func EntityDefault(entityID string) Scope { return wire.EntityDefault(entityID) }

// ResourceDefault is the scope of a resource's limits for every entity without its own.
func ResourceDefault(resource string) Scope { return wire.ResourceDefault(resource) }

// SystemDefault is the scope of the limits that apply when nothing more specific is stored.
func SystemDefault() Scope { return wire.SystemDefault() }

// Errors testable with errors.Is (the same values as package wire's).
var (
	ErrEntityNotFound  = wire.ErrEntityNotFound
	ErrEntityExists    = wire.ErrEntityExists
	ErrParentNotFound  = wire.ErrParentNotFound
	ErrParentIsChild   = wire.ErrParentIsChild
	ErrHasChildren     = wire.ErrHasChildren
	ErrParentImmutable = wire.ErrParentImmutable
	ErrLimitsNotFound  = wire.ErrLimitsNotFound
	ErrLeaseCommitted  = wire.ErrLeaseCommitted
	ErrLeaseRolledBack = wire.ErrLeaseRolledBack
	ErrLeaseNotFound   = wire.ErrLeaseNotFound
)

// Error types testable with errors.As (see package wire).
type (
	// ValidationError reports bad input: see wire.ValidationError.
	ValidationError = wire.ValidationError
	// UnavailableError reports that DynamoDB failed while the call failed closed: see
	// wire.UnavailableError.
	UnavailableError = wire.UnavailableError
	// RateLimitExceededError is an acquire's refusal: see wire.RateLimitExceededError.
	RateLimitExceededError = wire.RateLimitExceededError
	// RateLimitExceededJSON is the JSON form of a RateLimitExceededError: see
	// wire.RateLimitExceededJSON.
	RateLimitExceededJSON = wire.RateLimitExceededJSON
)

// RetryAfterSeconds rounds d up to whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int64 { return wire.RetryAfterSeconds(d) }
