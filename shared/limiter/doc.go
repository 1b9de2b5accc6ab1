// Package limiter is a rate limiter for APIs and LLM budgets on one DynamoDB table.
//
// Each limit is a token bucket (see Limit): it holds at most its capacity, starts full and
// refills continuously and exactly. Tokens are integers in calls and millitokens in storage;
// refill is a fraction amount/period kept as integers, so no amount drifts however many calls
// are made.
//
// Acquire takes tokens from several limits of one entity and resource at once, all or
// nothing, and returns a Lease. The consumption is written at once; the lease can Adjust it
// later (the real token count of an LLM call, possibly driving a bucket negative), Commit it, or
// Rollback to put back all it took. Do wraps the three: it commits when the work succeeds and
// rolls back when it fails or panics.
//
// Entities form a two-level hierarchy (a project and its API keys). With cascade, an acquire
// for a key also takes from its project's bucket, atomically: both or neither. Limits can be
// stored per entity and resource, per entity, per resource and for the whole system; with
// UseStoredLimits the most specific set that exists applies.
//
// A refusal is a *RateLimitExceededError listing every limit at every level, which were
// exceeded and when to retry. When DynamoDB fails, a call fails closed (*UnavailableError) or,
// if it asked to, open (a degraded lease).
//
// # Cost
//
// An acquire of one entity with any number of limits is one conditional UpdateItem: 0 RCU and
// 1 WCU for an item under 1 KB, refill included. With cascade it is one TransactWriteItems of
// two items (0 RCU, 4 WCU). Entities and stored limits are read through a cache (WithCacheTTL).
// Adjust is one UpdateItem (one transaction with cascade, with a stored lease, or when giving
// tokens back). Commit writes nothing for an in-memory lease and one UpdateItem of the lease
// item for a stored one (AcquireRequest.LeaseTTL, as the HTTP API's). Rollback is one
// idempotent transaction.
//
// The conditional writes are described in package storage and the arithmetic in package
// tokenbucket. The value types and errors of calls (Limit, AcquireRequest, LimitStatus,
// RateLimitExceededError, …) are defined in package wire, which imports only the standard
// library so that the Go client can share them; the names here are aliases of the same types.
package limiter
