// Package httpapi is the one place the acquire and admin functions share for their HTTP
// contract: the JSON wire types of every request and response (defined in package wire, with
// the validation of what they carry, and named here through aliases), strict request decoding,
// the mapping of the limiter's errors to status codes and error bodies, the IETF RateLimit
// headers, and a small router that serves the same handlers from an API Gateway HTTP API event
// (payload 2.0), from a direct Lambda invocation ({"action": …}), or from any caller that
// builds a Request.
//
// The contract itself is described in docs/openapi.yaml. Handlers translate: they decode a
// request into the limiter's types, call the limiter, and encode what it returned. Nothing
// here reads or writes DynamoDB.
//
// Router.Observe hooks every served request; MetricsObserver turns it into one CloudWatch EMF
// line per request (package metrics): requests, latency, 4xx, 429, 5xx, 503, fail-open grants
// and the route's own counter.
//
// Go callers use package client, which speaks this contract over HTTP or Lambda Invoke with
// the same types from package wire, without importing this package.
package httpapi
