package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/clip"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The library's sentinels, for errors.Is on the client's errors: a 404 lease_not_found matches
// ErrLeaseNotFound, a 409 lease_committed ErrLeaseCommitted and a 409 lease_rolled_back
// ErrLeaseRolledBack. Entity errors of the admin API match theirs the same way.
var (
	ErrLeaseNotFound   = wire.ErrLeaseNotFound
	ErrLeaseCommitted  = wire.ErrLeaseCommitted
	ErrLeaseRolledBack = wire.ErrLeaseRolledBack
)

// RateLimitExceededError is a 429 answer: nothing was consumed. Statuses lists every limit
// checked at every level, as the library's error does (each status's Limit carries its name and
// capacity only). errors.As also finds a *wire.RateLimitExceededError (alias
// limiter.RateLimitExceededError) in it.
type RateLimitExceededError struct {
	Statuses   []wire.LimitStatus
	RetryAfter time.Duration // the longest wait among the violations
	lib        *wire.RateLimitExceededError
}

// Error names the bottleneck limit and the wait, as the library's error does.
func (e *RateLimitExceededError) Error() string { return e.lib.Error() }

// Unwrap returns the equivalent *wire.RateLimitExceededError.
func (e *RateLimitExceededError) Unwrap() error { return e.lib }

// Violations returns the statuses of the limits that were exceeded.
func (e *RateLimitExceededError) Violations() []wire.LimitStatus { return e.lib.Violations() }

// ValidationError is a 400 (or 413) answer: the request was refused and nothing changed.
// errors.As also finds a *wire.ValidationError (alias limiter.ValidationError) in it.
type ValidationError struct {
	StatusCode int
	Field      string // the request member at fault, when the server named one
	Message    string
	lib        *wire.ValidationError
}

// Error says the status, the field and what is wrong with it.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("zae-limiter API %d: %s", e.StatusCode, e.lib.Error())
}

// Unwrap returns the equivalent *wire.ValidationError.
func (e *ValidationError) Unwrap() error { return e.lib }

// UnavailableError reports that the limiter could not answer: a 503 (its storage failed and the
// call fails closed), a 5xx of the gateway, a failed Lambda invocation, or no connection.
// errors.As also finds a *wire.UnavailableError (alias limiter.UnavailableError) in it.
type UnavailableError struct {
	StatusCode int // 0 when no answer came
	Err        error
	lib        *wire.UnavailableError
}

func newUnavailable(status int, op string, err error) *UnavailableError {
	return &UnavailableError{StatusCode: status, Err: err, lib: &wire.UnavailableError{Op: op, Err: err}}
}

// Error says which call failed and why.
func (e *UnavailableError) Error() string { return e.lib.Error() }

// Unwrap returns the equivalent *wire.UnavailableError (whose cause is Err).
func (e *UnavailableError) Unwrap() error { return e.lib }

// Error is any other error answer of the API. When its code matches a library sentinel
// (lease_not_found, lease_committed, entity_not_found, …) errors.Is finds the sentinel.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	sentinel   error
}

// Error says the status, code and message of the answer.
func (e *Error) Error() string {
	return fmt.Sprintf("zae-limiter API %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Unwrap returns the library sentinel the answer matches, or nil.
func (e *Error) Unwrap() error { return e.sentinel }

// sentinel returns the library error an error code stands for, or nil.
func sentinel(code string) error {
	switch code {
	case wire.CodeLeaseNotFound:
		return wire.ErrLeaseNotFound
	case wire.CodeLeaseCommitted:
		return wire.ErrLeaseCommitted
	case wire.CodeLeaseRolledBack:
		return wire.ErrLeaseRolledBack
	case wire.CodeEntityNotFound:
		return wire.ErrEntityNotFound
	case wire.CodeEntityExists:
		return wire.ErrEntityExists
	case wire.CodeParentNotFound:
		return wire.ErrParentNotFound
	case wire.CodeParentIsChild:
		return wire.ErrParentIsChild
	case wire.CodeHasChildren:
		return wire.ErrHasChildren
	case wire.CodeParentImmutable:
		return wire.ErrParentImmutable
	case wire.CodeLimitsNotFound:
		return wire.ErrLimitsNotFound
	}
	return nil
}

// answerError turns an error answer into the client's error types.
func answerError(op string, status int, body []byte) error {
	if status == http.StatusTooManyRequests {
		var rl wire.RateLimitExceededJSON
		if err := json.Unmarshal(body, &rl); err == nil && rl.Error == wire.CodeRateLimitExceeded {
			e := &RateLimitExceededError{RetryAfter: time.Duration(rl.RetryAfterMs) * time.Millisecond}
			for _, s := range rl.Limits {
				e.Statuses = append(e.Statuses, s.LimitStatus())
			}
			e.lib = &wire.RateLimitExceededError{Statuses: e.Statuses, RetryAfter: e.RetryAfter}
			return e
		}
	}
	var eb wire.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" {
		// Not the API's error body: a gateway's own answer ({"message": …}) or a proxy's.
		var gw struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &gw)
		eb = wire.ErrorBody{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")), Message: gw.Message}
		if eb.Message == "" {
			eb.Message = clip.String(string(body), 200)
		}
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		return &ValidationError{StatusCode: status, Field: eb.Field, Message: eb.Message,
			lib: &wire.ValidationError{Field: eb.Field, Message: eb.Message}}
	case status >= 500:
		return newUnavailable(status, op, fmt.Errorf("%d %s: %s", status, eb.Error, eb.Message))
	}
	return &Error{StatusCode: status, Code: eb.Error, Message: eb.Message, sentinel: sentinel(eb.Error)}
}

// retryable reports whether a call that failed with err may be sent again: no answer came, or
// a 5xx did.
func retryable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}
