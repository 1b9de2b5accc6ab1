package wire

import (
	"time"
)

// Failure modes of AcquireRequestJSON.FailureMode.
const (
	FailClosedJSON = "fail_closed"
	FailOpenJSON   = "fail_open"
)

// DefaultLeaseTTL is how long a lease made over the API can be adjusted, committed or rolled
// back when the request does not say (lease_ttl_seconds, at most MaxLeaseTTL). After
// that it stands as committed.
const DefaultLeaseTTL = 15 * time.Minute

// AcquireRequestJSON is the body of POST /v1/acquire (and of the direct action "acquire").
type AcquireRequestJSON struct {
	EntityID string           `json:"entity_id"`
	Resource string           `json:"resource"`
	Consume  map[string]int64 `json:"consume"`
	Limits   []LimitJSON      `json:"limits,omitempty"`
	// Cascade: absent follows the entity's stored setting, true or false overrides it.
	Cascade         *bool  `json:"cascade,omitempty"`
	UseStoredLimits bool   `json:"use_stored_limits,omitempty"`
	FailureMode     string `json:"failure_mode,omitempty"` // fail_closed (default) or fail_open
	// RequestID makes a retried acquire idempotent: the same entity, resource and request id
	// return the same lease and consume once.
	RequestID string `json:"request_id,omitempty"`
	// LeaseTTLSeconds is how long the lease stays open (default DefaultLeaseTTL).
	LeaseTTLSeconds int64 `json:"lease_ttl_seconds,omitempty"`
	// Commit takes the tokens for good: no lease is kept (nothing to adjust, commit or roll
	// back), so the acquire is one conditional write instead of a transaction with the lease.
	// It cannot be combined with request_id or lease_ttl_seconds, which need a lease.
	Commit bool `json:"commit,omitempty"`
}

// Limiter returns the library request r describes. A lease made over the API is always stored
// (LeaseTTL > 0): it is settled by later, independent calls.
func (r AcquireRequestJSON) Limiter() (AcquireRequest, error) {
	out := AcquireRequest{
		EntityID: r.EntityID, Resource: r.Resource, Consume: r.Consume,
		UseStoredLimits: r.UseStoredLimits, RequestID: r.RequestID, LeaseTTL: DefaultLeaseTTL,
	}
	if err := checkIDs(r.EntityID, r.Resource); err != nil {
		return out, err
	}
	var err error
	if out.Limits, err = limitsFrom("limits", r.Limits); err != nil {
		return out, err
	}
	if r.Consume == nil {
		return out, InvalidRequest("consume", "required: the tokens to take by limit name, such as {\"rpm\": 1}")
	}
	for name, n := range r.Consume {
		if n < 0 {
			return out, InvalidRequest("consume."+name, "must be 0 or more tokens, got %d", n)
		}
	}
	switch {
	case r.Cascade == nil:
		out.Cascade = CascadeDefault
	case *r.Cascade:
		out.Cascade = CascadeOn
	default:
		out.Cascade = CascadeOff
	}
	switch r.FailureMode {
	case "":
		out.FailureMode = FailureModeDefault
	case FailClosedJSON:
		out.FailureMode = FailClosed
	case FailOpenJSON:
		out.FailureMode = FailOpen
	default:
		return out, InvalidRequest("failure_mode", "must be %s or %s, got %q", FailClosedJSON, FailOpenJSON, r.FailureMode)
	}
	if r.RequestID != "" {
		if InvalidIDReason(r.RequestID) != "" {
			return out, InvalidRequest("request_id", "1 to %d characters from A-Z a-z 0-9 _ . : @ / + = -", MaxRequestIDLength)
		}
	}
	if r.Commit {
		switch {
		case r.RequestID != "":
			return out, InvalidRequest("request_id", "an idempotent acquire needs a lease: drop commit or request_id")
		case r.LeaseTTLSeconds != 0:
			return out, InvalidRequest("lease_ttl_seconds", "a committed acquire keeps no lease: drop commit or lease_ttl_seconds")
		}
		out.LeaseTTL = 0
		return out, nil
	}
	if r.LeaseTTLSeconds != 0 {
		ttl := time.Duration(r.LeaseTTLSeconds) * time.Second
		if r.LeaseTTLSeconds < 1 || r.LeaseTTLSeconds > int64(MaxLeaseTTL/time.Second) {
			return out, InvalidRequest("lease_ttl_seconds", "must be 1 to %d, got %d", int64(MaxLeaseTTL/time.Second), r.LeaseTTLSeconds)
		}
		out.LeaseTTL = ttl
	}
	return out, nil
}

// JSON returns the body of POST /v1/acquire that asks for r (what the Go client sends). Limits
// use the full spelling; the lease TTL is rounded up to whole seconds; Principal is not sent
// (the API takes it from the caller's credentials).
func (r AcquireRequest) JSON() AcquireRequestJSON {
	out := AcquireRequestJSON{EntityID: r.EntityID, Resource: r.Resource, Consume: r.Consume,
		UseStoredLimits: r.UseStoredLimits, RequestID: r.RequestID}
	if r.Limits != nil {
		out.Limits = LimitsJSON(r.Limits)
	}
	switch r.Cascade {
	case CascadeOn:
		t := true
		out.Cascade = &t
	case CascadeOff:
		f := false
		out.Cascade = &f
	}
	switch r.FailureMode {
	case FailClosed:
		out.FailureMode = FailClosedJSON
	case FailOpen:
		out.FailureMode = FailOpenJSON
	}
	if r.LeaseTTL > 0 {
		out.LeaseTTLSeconds = int64((r.LeaseTTL + time.Second - 1) / time.Second)
	}
	return out
}

// AcquireResponse is the 200 body of POST /v1/acquire.
type AcquireResponse struct {
	// LeaseID names the lease for the lease routes; absent for a committed acquire.
	LeaseID  string           `json:"lease_id,omitempty"`
	EntityID string           `json:"entity_id"`
	Resource string           `json:"resource"`
	Consumed map[string]int64 `json:"consumed"`
	// Statuses are the limits after the acquire, at every level charged (Available is what
	// remains).
	Statuses []StatusJSON `json:"statuses"`
	// ExpiresAt is when the lease can no longer be adjusted, committed or rolled back.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Degraded is true for a lease granted without DynamoDB (fail_open): it took nothing and is
	// not stored, so its lease routes answer 404. It is granted only when DynamoDB is
	// unreachable or throttling past the retries (DegradedReason says so), never for contention.
	Degraded bool `json:"degraded"`
	// DegradedReason is "dynamodb_unavailable" for a degraded lease.
	DegradedReason string `json:"degraded_reason,omitempty"`
	// Committed is true for an acquire made with commit: the tokens are taken for good.
	Committed bool `json:"committed,omitempty"`
}

// AdjustRequest is the body of POST /v1/leases/{lease_id}/adjust.
type AdjustRequest struct {
	// Adjust maps limit names to whole tokens to add to the lease (negative to give back).
	Adjust map[string]int64 `json:"adjust"`
	// IdempotencyKey makes the adjustment apply at most once to the lease: a repeat with the
	// same key, from any caller, answers 200 and changes nothing. Without it a retried adjust
	// counts again.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Check reports whether r names at least one limit.
func (r AdjustRequest) Check() error {
	if len(r.Adjust) == 0 {
		return InvalidRequest("adjust", "required: tokens to add (or give back, negative) by limit name")
	}
	if len(r.Adjust) > MaxLimits {
		return InvalidRequest("adjust", "at most %d limits, got %d", MaxLimits, len(r.Adjust))
	}
	return checkKey(r.IdempotencyKey)
}

// SettleRequest is the optional body of POST /v1/leases/{lease_id}/commit and /rollback. Both
// are idempotent by the lease's state (a repeat answers 200); the key is accepted so a client can
// send one with every settling call, and is checked like an adjust's.
type SettleRequest struct {
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Consumed (commit only) is what the lease keeps, in whole tokens by limit name: the commit
	// first adjusts the lease to it, in the same write (Lease.Settle).
	Consumed map[string]int64 `json:"consumed,omitempty"`
}

// Check reports whether the key is well formed.
func (r SettleRequest) Check() error { return checkKey(r.IdempotencyKey) }

func checkKey(k string) error {
	if k != "" && (len(k) > MaxIdempotencyKeyLength || InvalidIDReason(k) != "") {
		return InvalidRequest("idempotency_key", "1 to %d characters from A-Z a-z 0-9 _ . : @ / + = -", MaxIdempotencyKeyLength)
	}
	return nil
}

// LeaseResponse is the 200 body of the lease routes: adjust (with consumed and statuses),
// commit and rollback.
type LeaseResponse struct {
	LeaseID  string           `json:"lease_id"`
	State    string           `json:"state"` // open, committed or rolled_back
	Consumed map[string]int64 `json:"consumed,omitempty"`
	Statuses []StatusJSON     `json:"statuses,omitempty"`
}

// AvailableRequestJSON is the body of POST /v1/available.
type AvailableRequestJSON struct {
	EntityID        string      `json:"entity_id"`
	Resource        string      `json:"resource"`
	Limits          []LimitJSON `json:"limits,omitempty"`
	UseStoredLimits bool        `json:"use_stored_limits,omitempty"`
}

// Limiter returns the library request r describes.
func (r AvailableRequestJSON) Limiter() (AvailableRequest, error) {
	out := AvailableRequest{EntityID: r.EntityID, Resource: r.Resource, UseStoredLimits: r.UseStoredLimits}
	if err := checkIDs(r.EntityID, r.Resource); err != nil {
		return out, err
	}
	var err error
	out.Limits, err = limitsFrom("limits", r.Limits)
	return out, err
}

// JSON returns the body of POST /v1/available that asks for r (what the Go client sends).
func (r AvailableRequest) JSON() AvailableRequestJSON {
	out := AvailableRequestJSON{EntityID: r.EntityID, Resource: r.Resource, UseStoredLimits: r.UseStoredLimits}
	if r.Limits != nil {
		out.Limits = LimitsJSON(r.Limits)
	}
	return out
}

// AvailableResponse is the 200 body of POST /v1/available.
type AvailableResponse struct {
	Available map[string]int64 `json:"available"`
}

// TimeUntilAvailableRequest is the body of POST /v1/time-until-available.
type TimeUntilAvailableRequest struct {
	EntityID        string           `json:"entity_id"`
	Resource        string           `json:"resource"`
	Limits          []LimitJSON      `json:"limits,omitempty"`
	UseStoredLimits bool             `json:"use_stored_limits,omitempty"`
	Needed          map[string]int64 `json:"needed"`
}

// Limiter returns the library request and the needed amounts r describes.
func (r TimeUntilAvailableRequest) Limiter() (AvailableRequest, map[string]int64, error) {
	req, err := AvailableRequestJSON{EntityID: r.EntityID, Resource: r.Resource, Limits: r.Limits, UseStoredLimits: r.UseStoredLimits}.Limiter()
	if err != nil {
		return req, nil, err
	}
	if len(r.Needed) == 0 {
		return req, nil, InvalidRequest("needed", "required: the tokens wanted by limit name, such as {\"rpm\": 1}")
	}
	if len(r.Needed) > MaxLimits {
		return req, nil, InvalidRequest("needed", "at most %d limits, got %d", MaxLimits, len(r.Needed))
	}
	return req, r.Needed, nil
}

// TimeUntilAvailableResponse is the 200 body of POST /v1/time-until-available: how long until
// every needed amount is available, 0 when it is now.
type TimeUntilAvailableResponse struct {
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	RetryAfterMs      int64   `json:"retry_after_ms"`
}

// EntityRequest is the body of PUT /v1/entities/{entity_id}. PUT replaces the name, cascade
// default and metadata. ParentID is fixed at creation: on an update it may be left out, and a
// different value is refused (409 parent_immutable).
type EntityRequest struct {
	Name     string            `json:"name,omitempty"`
	ParentID *string           `json:"parent_id,omitempty"`
	Cascade  bool              `json:"cascade,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EntityJSON is the JSON form of Entity.
type EntityJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	ParentID  string            `json:"parent_id,omitempty"`
	Cascade   bool              `json:"cascade"`
	Metadata  map[string]string `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// JSON returns the JSON form of e: times in UTC, and an empty Metadata map for none.
func (e Entity) JSON() EntityJSON {
	md := e.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return EntityJSON{ID: e.ID, Name: e.Name, ParentID: e.ParentID, Cascade: e.Cascade, Metadata: md,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
}

// ChildrenResponse is the 200 body of GET /v1/entities/{entity_id}/children.
type ChildrenResponse struct {
	Children []EntityJSON `json:"children"`
}

// LimitsBody is the body of PUT and the 200 body of GET on every limits route.
type LimitsBody struct {
	Limits []LimitJSON `json:"limits"`
}

// Limiter returns the limits b describes: 1 to MaxLimits of them.
func (b LimitsBody) Limiter() ([]Limit, error) {
	if len(b.Limits) == 0 {
		return nil, InvalidRequest("limits", "required: at least one limit (DELETE the scope to remove them)")
	}
	return limitsFrom("limits", b.Limits)
}

// checkIDs checks that an entity id and a resource are present; the limiter checks their
// characters.
func checkIDs(entityID, resource string) error {
	if entityID == "" {
		return InvalidRequest("entity_id", "required")
	}
	if resource == "" {
		return InvalidRequest("resource", "required")
	}
	return nil
}
