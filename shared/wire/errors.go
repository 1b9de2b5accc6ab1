package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Errors testable with errors.Is: the limiter returns them, and the client's errors match
// them for the same answers.
var (
	ErrEntityNotFound  = errors.New("entity not found")
	ErrEntityExists    = errors.New("entity already exists")
	ErrParentNotFound  = errors.New("parent entity not found")
	ErrParentIsChild   = errors.New("parent entity is itself a child (two levels only)")
	ErrHasChildren     = errors.New("entity has children")
	ErrParentImmutable = errors.New("an entity's parent cannot be changed")
	ErrLimitsNotFound  = errors.New("no stored limits")
	ErrLeaseCommitted  = errors.New("lease already committed")
	ErrLeaseRolledBack = errors.New("lease already rolled back")
	// ErrLeaseNotFound is returned by limiter.Limiter.Lease, and by a stored lease's methods, for a
	// lease that does not exist or has expired.
	ErrLeaseNotFound = errors.New("lease not found or expired")
)

// ValidationError reports bad input: nothing was read or written.
type ValidationError struct {
	Field   string // the request field at fault, such as "consume.tpm"
	Message string
}

// Error returns "invalid <field>: <message>".
func (e *ValidationError) Error() string { return "invalid " + e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// UnavailableError reports that DynamoDB could not be reached or refused the request (throttled
// past the SDK's retries) while the call failed closed, or (from the client) that the API
// could not answer. Err is the cause. It never reports contention (see the limiter's
// ContendedError and RateLimitExceededError.Contended).
//
// Uncertain is true when a write was sent and its outcome is unknown (the response was lost
// each time it was resent): it may have been applied. A retry of the same call with the same
// request id (acquire) or idempotency key (adjust) then applies it at most once.
type UnavailableError struct {
	Op        string
	Err       error
	Uncertain bool
}

// Error names the operation and the cause.
func (e *UnavailableError) Error() string {
	return "limiter unavailable: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// LimitStatus is the state of one limit of one entity at the time of a decision.
//
// Available is what a refused call found, and what a granted call left. For a single bucket it
// is read from the item the write returned. A transaction (cascade, a stored lease) returns no
// item: its statuses are then computed from the limiter's last view of the items plus the
// write, and marked Estimated, since takes by other processes since that view are not in it.
type LimitStatus struct {
	EntityID   string
	Resource   string
	Limit      Limit
	Available  int64         // whole tokens, rounded down (may be negative)
	Requested  int64         // tokens the call asked for
	Exceeded   bool          // Available < Requested
	RetryAfter time.Duration // until Requested tokens are available; 0 when not exceeded
	// Estimated is true when Available was not read from DynamoDB's answer to this call: it
	// may be higher than what is left.
	Estimated bool
}

// StatusJSON is the JSON form of a LimitStatus: what MarshalJSON writes and what API clients
// read back.
type StatusJSON struct {
	EntityID          string  `json:"entity_id"`
	Resource          string  `json:"resource"`
	LimitName         string  `json:"limit_name"`
	Capacity          int64   `json:"capacity"`
	Available         int64   `json:"available"`
	Requested         int64   `json:"requested"`
	Exceeded          bool    `json:"exceeded"`
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	// Estimated: available was not read from DynamoDB's answer (a transaction's) and may be
	// higher than what is left.
	Estimated bool `json:"estimated,omitempty"`
}

// JSON returns the JSON form of s.
func (s LimitStatus) JSON() StatusJSON {
	return StatusJSON{
		EntityID: s.EntityID, Resource: s.Resource, LimitName: s.Limit.Name, Capacity: s.Limit.Capacity,
		Available: s.Available, Requested: s.Requested, Exceeded: s.Exceeded,
		RetryAfterSeconds: s.RetryAfter.Seconds(), Estimated: s.Estimated,
	}
}

// StatusesJSON returns the JSON form of every status (an empty list, never null).
func StatusesJSON(ss []LimitStatus) []StatusJSON {
	out := make([]StatusJSON, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.JSON())
	}
	return out
}

// MarshalJSON encodes the status with snake_case names and the retry in seconds.
func (s LimitStatus) MarshalJSON() ([]byte, error) { return json.Marshal(s.JSON()) }

// LimitStatus returns the status j describes. The JSON form carries a limit's name and
// capacity only, so Limit has no refill; the retry is rounded to the millisecond and capped at
// twice MaxRefillPeriod (beyond any wait the limiter reports).
func (j StatusJSON) LimitStatus() LimitStatus {
	retry := time.Duration(0)
	if s := j.RetryAfterSeconds; s > 0 {
		s = min(s, 2*MaxRefillPeriod.Seconds())
		retry = time.Duration(math.Round(s*1000)) * time.Millisecond
	}
	return LimitStatus{EntityID: j.EntityID, Resource: j.Resource, Limit: Limit{Name: j.LimitName, Capacity: j.Capacity},
		Available: j.Available, Requested: j.Requested, Exceeded: j.Exceeded, RetryAfter: retry, Estimated: j.Estimated}
}

// RateLimitExceededError is returned by Acquire when a limit has too few tokens. Nothing was
// consumed. It lists every limit checked, at every level (the entity and, with cascade, its
// parent), so a caller can tell which ran out and when to retry.
type RateLimitExceededError struct {
	Statuses   []LimitStatus
	RetryAfter time.Duration // the longest wait among the violations
	// Contended is true for a refusal because the bucket was too contended to write within the
	// attempts allowed: the statuses are the freshest seen, and may show enough tokens.
	Contended bool
}

// Error describes the primary violation and the wait.
func (e *RateLimitExceededError) Error() string {
	p := e.PrimaryViolation()
	if e.Contended && !p.Exceeded {
		return fmt.Sprintf("rate limit exceeded: bucket %s too contended; retry after %s", e.bucket(), e.RetryAfter)
	}
	return fmt.Sprintf("rate limit exceeded: %s %s/%s: %d available, %d requested; retry after %s",
		p.Limit.Name, p.EntityID, p.Resource, p.Available, p.Requested, e.RetryAfter)
}

func (e *RateLimitExceededError) bucket() string {
	if len(e.Statuses) == 0 {
		return "?"
	}
	return e.Statuses[0].EntityID + "/" + e.Statuses[0].Resource
}

// Violations returns the statuses of the limits that were exceeded.
func (e *RateLimitExceededError) Violations() []LimitStatus { return e.filter(true) }

// Passed returns the statuses of the limits that had enough tokens.
func (e *RateLimitExceededError) Passed() []LimitStatus { return e.filter(false) }

func (e *RateLimitExceededError) filter(exceeded bool) []LimitStatus {
	var out []LimitStatus
	for _, s := range e.Statuses {
		if s.Exceeded == exceeded {
			out = append(out, s)
		}
	}
	return out
}

// PrimaryViolation returns the violation with the longest wait: the bottleneck.
func (e *RateLimitExceededError) PrimaryViolation() LimitStatus {
	var p LimitStatus
	for _, s := range e.Statuses {
		if s.Exceeded && (!p.Exceeded || s.RetryAfter > p.RetryAfter) {
			p = s
		}
	}
	return p
}

// RetryAfterHeader returns the value of an HTTP Retry-After header: whole seconds, rounded up,
// at least 1.
func (e *RateLimitExceededError) RetryAfterHeader() string {
	return strconv.FormatInt(RetryAfterSeconds(e.RetryAfter), 10)
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// RateLimitExceededJSON is the JSON form of a RateLimitExceededError: what MarshalJSON writes
// (the HTTP API's 429 body) and what API clients read back.
type RateLimitExceededJSON struct {
	Error             string       `json:"error"` // always "rate_limit_exceeded"
	Message           string       `json:"message"`
	RetryAfterSeconds float64      `json:"retry_after_seconds"`
	RetryAfterMs      int64        `json:"retry_after_ms"`
	Limits            []StatusJSON `json:"limits"`
	// Contended is true for a refusal because the bucket was too busy to write: the limits may
	// show enough tokens; retry after the wait.
	Contended bool `json:"contended,omitempty"`
}

// MarshalJSON returns the error as an API response body (RateLimitExceededJSON):
// {"error":"rate_limit_exceeded","message","retry_after_seconds","retry_after_ms","limits":[…]}.
func (e *RateLimitExceededError) MarshalJSON() ([]byte, error) {
	statuses := make([]StatusJSON, 0, len(e.Statuses))
	for _, s := range e.Statuses {
		statuses = append(statuses, s.JSON())
	}
	return json.Marshal(RateLimitExceededJSON{"rate_limit_exceeded", e.Error(), e.RetryAfter.Seconds(), e.RetryAfter.Milliseconds(), statuses, e.Contended})
}
