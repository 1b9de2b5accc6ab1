package httpapi

import (
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The JSON bodies of the API live in package wire, which the Go client shares without
// compiling in the limiter; these are their names here (the same types).
type (
	// AcquireRequest is the body of POST /v1/acquire: see wire.AcquireRequestJSON.
	AcquireRequest = wire.AcquireRequestJSON
	// AcquireResponse is the 200 body of POST /v1/acquire: see wire.AcquireResponse.
	AcquireResponse = wire.AcquireResponse
	// AdjustRequest is the body of POST /v1/leases/{lease_id}/adjust: see wire.AdjustRequest.
	AdjustRequest = wire.AdjustRequest
	// SettleRequest is the optional body of commit and rollback: see wire.SettleRequest.
	SettleRequest = wire.SettleRequest
	// LeaseResponse is the 200 body of the lease routes: see wire.LeaseResponse.
	LeaseResponse = wire.LeaseResponse
	// AvailableRequest is the body of POST /v1/available: see wire.AvailableRequestJSON.
	AvailableRequest = wire.AvailableRequestJSON
	// AvailableResponse is the 200 body of POST /v1/available: see wire.AvailableResponse.
	AvailableResponse = wire.AvailableResponse
	// TimeUntilAvailableRequest is the body of POST /v1/time-until-available: see
	// wire.TimeUntilAvailableRequest.
	TimeUntilAvailableRequest = wire.TimeUntilAvailableRequest
	// TimeUntilAvailableResponse is the 200 body of POST /v1/time-until-available: see
	// wire.TimeUntilAvailableResponse.
	TimeUntilAvailableResponse = wire.TimeUntilAvailableResponse
	// EntityRequest is the body of PUT /v1/entities/{entity_id}: see wire.EntityRequest.
	EntityRequest = wire.EntityRequest
	// Entity is the JSON form of limiter.Entity: see wire.EntityJSON.
	Entity = wire.EntityJSON
	// ChildrenResponse is the 200 body of GET /v1/entities/{entity_id}/children: see
	// wire.ChildrenResponse.
	ChildrenResponse = wire.ChildrenResponse
	// LimitsBody is the body of PUT and the 200 body of GET on every limits route: see
	// wire.LimitsBody.
	LimitsBody = wire.LimitsBody
)

// Failure modes of AcquireRequest.FailureMode.
const (
	FailClosed = wire.FailClosedJSON
	FailOpen   = wire.FailOpenJSON
)

// DefaultLeaseTTL is how long a lease made over the API can be adjusted, committed or rolled
// back when the request does not say (lease_ttl_seconds, at most limiter.MaxLeaseTTL). After
// that it stands as committed.
const DefaultLeaseTTL = wire.DefaultLeaseTTL

// NewAcquireRequest returns the JSON form of a library request (r.JSON()). Limits use the full
// spelling.
func NewAcquireRequest(r limiter.AcquireRequest) AcquireRequest { return r.JSON() }

// LimitStatus is the JSON form of limiter.LimitStatus, exactly as its MarshalJSON writes it.
type LimitStatus = limiter.StatusJSON

// StatusFrom returns the JSON form of s.
func StatusFrom(s limiter.LimitStatus) LimitStatus { return s.JSON() }

// StatusesFrom returns the JSON form of every status (an empty list, never null).
func StatusesFrom(ss []limiter.LimitStatus) []LimitStatus { return wire.StatusesJSON(ss) }

// Lease states of LeaseResponse.State: the words the table stores too.
const (
	LeaseOpen       = "open"
	LeaseCommitted  = "committed"
	LeaseRolledBack = "rolled_back"
)

// NewAvailableRequest returns the JSON form of a library request (r.JSON()).
func NewAvailableRequest(r limiter.AvailableRequest) AvailableRequest { return r.JSON() }

// EntityFrom returns the JSON form of e (e.JSON()).
func EntityFrom(e *limiter.Entity) Entity { return e.JSON() }
