package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Error codes: the "error" member of every error body (see the wire.Code constants).
const (
	CodeInvalidRequest     = wire.CodeInvalidRequest
	CodePayloadTooLarge    = wire.CodePayloadTooLarge
	CodeNotFound           = wire.CodeNotFound
	CodeMethodNotAllowed   = wire.CodeMethodNotAllowed
	CodeRateLimitExceeded  = wire.CodeRateLimitExceeded
	CodeLimiterUnavailable = wire.CodeLimiterUnavailable
	CodeInternal           = wire.CodeInternal
	CodeLeaseNotFound      = wire.CodeLeaseNotFound
	CodeLeaseCommitted     = wire.CodeLeaseCommitted
	CodeLeaseRolledBack    = wire.CodeLeaseRolledBack
	CodeEntityNotFound     = wire.CodeEntityNotFound
	CodeParentNotFound     = wire.CodeParentNotFound
	CodeEntityExists       = wire.CodeEntityExists
	CodeParentIsChild      = wire.CodeParentIsChild
	CodeHasChildren        = wire.CodeHasChildren
	CodeParentImmutable    = wire.CodeParentImmutable
	CodeLimitsNotFound     = wire.CodeLimitsNotFound
	CodeContended          = wire.CodeContended
)

// DegradedUnavailable is AcquireResponse.DegradedReason for a lease granted because DynamoDB
// was unreachable or throttling.
const DegradedUnavailable = wire.DegradedUnavailable

type (
	// ErrorBody is the JSON body of every error answer except 429: see wire.ErrorBody.
	ErrorBody = wire.ErrorBody
	// RequestError is an error whose answer is already decided: see wire.RequestError.
	RequestError = wire.RequestError
)

// RateLimitExceeded is the JSON body of a 429 answer, as limiter.RateLimitExceededError
// marshals it.
type RateLimitExceeded = limiter.RateLimitExceededJSON

// invalid returns a 400 invalid_request error about field.
func invalid(field, format string, args ...any) error {
	return wire.InvalidRequest(field, format, args...)
}

// Invalid returns a 400 invalid_request error about field, for handlers' own checks.
func Invalid(field, format string, args ...any) error { return invalid(field, format, args...) }

// statusOf maps an error to its status, code and the message sent to the caller. Causes of 5xx
// answers are not sent (they are logged): they may name tables or internal state.
func statusOf(err error) (status int, body ErrorBody) {
	var (
		re  *RequestError
		ve  *limiter.ValidationError
		ue  *limiter.UnavailableError
		ce  *limiter.ContendedError
		mbe *http.MaxBytesError
	)
	sentinel := func(status int, code string) (int, ErrorBody) {
		return status, ErrorBody{Error: code, Message: err.Error()}
	}
	switch {
	case errors.As(err, &re):
		return re.Status, ErrorBody{Error: re.Code, Message: re.Message, Field: re.Field}
	case errors.As(err, &ve):
		return http.StatusBadRequest, ErrorBody{Error: CodeInvalidRequest, Message: ve.Message, Field: ve.Field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: CodePayloadTooLarge, Message: fmt.Sprintf("the body may hold at most %d bytes", MaxBodyBytes)}
	case errors.Is(err, limiter.ErrLeaseNotFound):
		return http.StatusNotFound, ErrorBody{Error: CodeLeaseNotFound, Message: "no such lease: unknown, malformed or expired id"}
	case errors.Is(err, limiter.ErrLeaseCommitted):
		return sentinel(http.StatusConflict, CodeLeaseCommitted)
	case errors.Is(err, limiter.ErrLeaseRolledBack):
		return sentinel(http.StatusConflict, CodeLeaseRolledBack)
	case errors.Is(err, limiter.ErrEntityNotFound):
		return sentinel(http.StatusNotFound, CodeEntityNotFound)
	case errors.Is(err, limiter.ErrParentNotFound):
		return sentinel(http.StatusNotFound, CodeParentNotFound)
	case errors.Is(err, limiter.ErrEntityExists):
		return sentinel(http.StatusConflict, CodeEntityExists)
	case errors.Is(err, limiter.ErrParentIsChild):
		return sentinel(http.StatusConflict, CodeParentIsChild)
	case errors.Is(err, limiter.ErrHasChildren):
		return sentinel(http.StatusConflict, CodeHasChildren)
	case errors.Is(err, limiter.ErrParentImmutable):
		return sentinel(http.StatusConflict, CodeParentImmutable)
	case errors.As(err, &ce):
		return http.StatusTooManyRequests, ErrorBody{Error: CodeContended, Message: "the lease's bucket is busy; nothing was written: retry (with the same idempotency_key)"}
	case errors.Is(err, limiter.ErrLimitsNotFound):
		return http.StatusNotFound, ErrorBody{Error: CodeLimitsNotFound, Message: "no limits are stored for this scope"}
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, ErrorBody{Error: CodeLimiterUnavailable, Message: "the limiter's storage could not be reached; retry later"}
	}
	return http.StatusInternalServerError, ErrorBody{Error: CodeInternal, Message: "internal error"}
}

// ErrorResponse returns the answer to err: 429 with the limiter's body, Retry-After and the
// RateLimit headers for *limiter.RateLimitExceededError; the status and error body of the
// mapping documented with the Code constants otherwise. The cause is kept for the log line.
func ErrorResponse(err error) *Response {
	var rle *limiter.RateLimitExceededError
	if errors.As(err, &rle) {
		body, merr := json.Marshal(rle)
		if merr != nil {
			return ErrorResponse(fmt.Errorf("encode 429 body: %w", merr))
		}
		r := &Response{Status: http.StatusTooManyRequests, Header: map[string]string{
			"content-type": contentTypeJSON,
			"retry-after":  rle.RetryAfterHeader(),
		}, Body: body, Err: err}
		SetRateLimitHeaders(r.Header, rle.Statuses)
		return r
	}
	status, body := statusOf(err)
	r := JSON(status, body)
	if status == http.StatusTooManyRequests {
		r.Header["retry-after"] = "1"
	}
	r.Err = err
	return r
}
