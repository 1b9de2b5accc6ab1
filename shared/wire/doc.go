// Package wire holds what the limiter and its callers exchange, and nothing that talks to
// AWS: the value types of the library (Limit, LimitStatus, AcquireRequest, AvailableRequest,
// Entity, Scope, AuditRecord), the errors it returns (ValidationError, UnavailableError,
// RateLimitExceededError and the sentinels such as ErrLeaseCommitted), the id grammar, and
// the JSON bodies and error codes of the HTTP API (docs/openapi.yaml) with their validation.
//
// It imports only the standard library, so that package client (and any Go program that
// calls the API) compiles in neither the limiter nor DynamoDB's SDK. Package limiter gives
// these types their library names as aliases (limiter.Limit is wire.Limit), and package httpapi
// gives the JSON bodies their API names (httpapi.AcquireRequest is wire.AcquireRequestJSON):
// errors.Is and errors.As match under either name. Every other package may import wire; wire
// imports none of them (TestWireImportsOnlyTheStandardLibrary keeps it so).
package wire
