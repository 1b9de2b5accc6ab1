package wire

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes: the "error" member of every error body.
const (
	CodeInvalidRequest     = "invalid_request"     // 400: bad JSON, fields or ids
	CodePayloadTooLarge    = "payload_too_large"   // 413: body over httpapi.MaxBodyBytes
	CodeNotFound           = "not_found"           // 404: no such route
	CodeMethodNotAllowed   = "method_not_allowed"  // 405: route exists, method does not
	CodeRateLimitExceeded  = "rate_limit_exceeded" // 429: the body of RateLimitExceededError
	CodeLimiterUnavailable = "limiter_unavailable" // 503: DynamoDB failed and the call fails closed
	CodeInternal           = "internal_error"      // 500: a bug; the cause is logged, not sent
	CodeLeaseNotFound      = "lease_not_found"     // 404: unknown, malformed or expired lease id
	CodeLeaseCommitted     = "lease_committed"     // 409
	CodeLeaseRolledBack    = "lease_rolled_back"   // 409
	CodeEntityNotFound     = "entity_not_found"    // 404
	CodeParentNotFound     = "parent_not_found"    // 404: a new child names an unknown parent
	CodeEntityExists       = "entity_exists"       // 409
	CodeParentIsChild      = "parent_is_child"     // 409: two levels only
	CodeHasChildren        = "has_children"        // 409: delete the children first
	CodeParentImmutable    = "parent_immutable"    // 409: an entity's parent cannot change
	CodeLimitsNotFound     = "limits_not_found"    // 404: nothing stored for the scope
	CodeContended          = "contended"           // 429: a hot item lost every race; nothing written, retry
)

// DegradedUnavailable is AcquireResponse.DegradedReason for a lease granted because DynamoDB
// was unreachable or throttling.
const DegradedUnavailable = "dynamodb_unavailable"

// ErrorBody is the JSON body of every error answer except 429, whose body is the limiter's
// RateLimitExceededError (see RateLimitExceededJSON).
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
	// Field names the request member at fault for invalid_request, such as "consume.tpm".
	Field string `json:"field,omitempty"`
}

// RequestError is an error whose answer is already decided: a status, a code and a message.
// Decoding and validation return it (as do handlers for conditions of their own).
type RequestError struct {
	Status  int
	Code    string
	Field   string
	Message string
}

// Error says the code, status, field and message.
func (e *RequestError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%d): %s: %s", e.Code, e.Status, e.Field, e.Message)
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// InvalidRequest returns a 400 invalid_request *RequestError about field, its message made
// from format and args.
func InvalidRequest(field, format string, args ...any) error {
	return &RequestError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// DirectResponse is the answer to a direct invocation: the status and body the same request
// would have had over HTTP.
type DirectResponse struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}
