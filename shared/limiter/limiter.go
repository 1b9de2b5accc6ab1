package limiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Default settings of a Limiter.
const (
	DefaultCacheTTL    = 60 * time.Second
	DefaultMaxAttempts = 12
	cacheEntries       = 10_000
	bucketHintTTL      = 10 * time.Minute
)

// A Limiter admits or refuses work against token buckets stored in one DynamoDB table.
//
// An Acquire takes tokens from every limit of an entity+resource (and, with cascade, of the
// entity's parent) all-or-nothing and returns a Lease; the lease can Adjust the amounts later
// (without ever being refused), Commit, or Rollback to put back everything it took. Available
// and TimeUntilAvailable look without taking.
//
// Entities and stored limits are read through an in-process cache whose entries live
// WithCacheTTL (default 60 s): a change made through another Limiter (another Lambda instance)
// reaches this one within that time; changes made through this Limiter apply at once. Bucket
// state is cached too, but only as a guess of which conditional write will succeed: every
// decision is made by DynamoDB's condition on the current item, never by the cache.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	table       *storage.Table
	now         func() time.Time
	failureMode FailureMode
	maxAttempts int
	log         *slog.Logger
	entities    *ttlCache[string, *storage.EntityItem]
	limits      *ttlCache[bucketID, []Limit]
	buckets     *ttlCache[bucketID, *storage.Bucket]
	lanes       *lanes

	// auditRetention is how long audit records are kept (<= 0: forever).
	auditRetention time.Duration
}

type bucketID struct{ entity, resource string }

// Option configures a Limiter.
type Option func(*config)

type config struct {
	now         func() time.Time
	failureMode FailureMode
	cacheTTL    time.Duration
	maxAttempts int
	log         *slog.Logger

	auditRetention time.Duration // see WithAuditRetention
}

// WithClock sets the clock (default time.Now). Tests pass a settable one and never sleep.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithFailureMode sets the failure mode of calls that do not choose one (default FailClosed).
func WithFailureMode(m FailureMode) Option { return func(c *config) { c.failureMode = m } }

// WithCacheTTL sets how long entities and stored limits are cached (default 60 s; 0 disables).
func WithCacheTTL(d time.Duration) Option { return func(c *config) { c.cacheTTL = d } }

// WithMaxAttempts sets how many conditional writes one operation may try before it reports
// contention as an *UnavailableError (default 12). Writers that lose a race more than once
// back off for a random few milliseconds.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithLogger sets the structured logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// New returns a Limiter on the table called table, reached through client (a *dynamodb.Client).
func New(client storage.Client, table string, opts ...Option) *Limiter {
	c := config{now: time.Now, failureMode: FailClosed, cacheTTL: DefaultCacheTTL, maxAttempts: DefaultMaxAttempts, log: slog.Default()}
	c.auditRetention = DefaultAuditRetention
	for _, o := range opts {
		o(&c)
	}
	if c.failureMode == FailureModeDefault {
		c.failureMode = FailClosed
	}
	return &Limiter{
		table:       storage.New(client, table),
		now:         c.now,
		failureMode: c.failureMode,
		maxAttempts: max(c.maxAttempts, 1),
		log:         c.log,
		entities:    newTTLCache[string, *storage.EntityItem](c.cacheTTL, cacheEntries, c.now),
		limits:      newTTLCache[bucketID, []Limit](c.cacheTTL, cacheEntries, c.now),
		buckets:     newTTLCache[bucketID, *storage.Bucket](bucketHintTTL, cacheEntries, c.now),
		lanes:       newLanes(),

		auditRetention: c.auditRetention,
	}
}

// CreateTable creates the limiter's table if it is missing (for DynamoDB Local and tests; in
// AWS the CDK stack owns it). It is idempotent.
func (l *Limiter) CreateTable(ctx context.Context) error { return l.table.CreateTable(ctx) }

// nowMs returns the limiter's clock in Unix ms.
func (l *Limiter) nowMs() int64 { return l.now().UnixMilli() }

// level is one bucket an operation charges: the entity's or its parent's.
type level struct {
	entityID string
	limits   []Limit
	amounts  map[string]int64 // millitokens by limit name; only limits of this level
	acquires int64
}

// Acquire takes req.Consume from every limit of the entity+resource and, with cascade, from the
// parent's limits of the same names, all-or-nothing, in one conditional write (one UpdateItem, or
// one two-item TransactWriteItems with cascade). It returns a Lease, or:
//   - *RateLimitExceededError when a limit at either level has too few tokens (nothing taken);
//   - *ValidationError for bad input (nothing read or written);
//   - *UnavailableError when DynamoDB fails and the call fails closed.
//
// Failing open, a DynamoDB failure (unreachable, or throttling past the SDK's retries) returns a
// degraded lease instead (Lease.Degraded, Lease.DegradedCause). Contention is not a failure: a
// bucket too contended to write within WithMaxAttempts is refused
// (*RateLimitExceededError with Contended), whatever the failure mode.
func (l *Limiter) Acquire(ctx context.Context, req AcquireRequest) (*Lease, error) {
	if err := validateAcquire(req); err != nil {
		return nil, err
	}
	lease, err := l.acquire(ctx, req)
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) && l.mode(req.FailureMode) == FailOpen {
		l.log.WarnContext(ctx, "limiter unavailable; admitting (fail open)",
			"entity_id", req.EntityID, "resource", req.Resource, "error", err.Error(), "uncertain", unavailable.Uncertain)
		return &Lease{l: l, id: newID(), entityID: req.EntityID, resource: req.Resource, degraded: true, cause: unavailable}, nil
	}
	return lease, err
}

func (l *Limiter) mode(m FailureMode) FailureMode {
	if m == FailureModeDefault {
		return l.failureMode
	}
	return m
}

func validateAcquire(req AcquireRequest) error {
	if err := validateIDs(req.EntityID, req.Resource); err != nil {
		return err
	}
	if err := validateLimits(req.Limits); err != nil {
		return err
	}
	if len(req.Consume) == 0 {
		return invalid("consume", "name at least one limit to consume from")
	}
	if len(req.Consume) > MaxLimits {
		return invalid("consume", "at most %d limits, got %d", MaxLimits, len(req.Consume))
	}
	for name, n := range req.Consume {
		if n < 0 || n > MaxTokens {
			return invalid("consume."+name, "must be 0 to %d tokens, got %d", int64(MaxTokens), n)
		}
	}
	if !req.UseStoredLimits {
		if len(req.Limits) == 0 {
			return invalid("limits", "give the limits to check, or use stored limits")
		}
		// Checked here too (plan checks stored limits) so bad input costs no request.
		for name, n := range req.Consume {
			lim, ok := findLimit(req.Limits, name)
			if !ok {
				return invalid("consume."+name, "no limit %q is given", name)
			}
			if n > lim.Capacity {
				return invalid("consume."+name, "%d tokens exceed the capacity %d: it can never be admitted", n, lim.Capacity)
			}
		}
	}
	if req.LeaseTTL < 0 || req.LeaseTTL > MaxLeaseTTL {
		return invalid("lease_ttl", "must be 0 to %s, got %s", MaxLeaseTTL, req.LeaseTTL)
	}
	if req.RequestID != "" && req.LeaseTTL == 0 {
		return invalid("request_id", "an idempotent acquire needs a stored lease (LeaseTTL > 0)")
	}
	if len(req.RequestID) > MaxRequestIDLength {
		return invalid("request_id", "at most %d bytes", MaxRequestIDLength)
	}
	switch req.Cascade {
	case CascadeDefault, CascadeOn, CascadeOff:
	default:
		return invalid("cascade", "unknown cascade mode %d", req.Cascade)
	}
	switch req.FailureMode {
	case FailureModeDefault, FailClosed, FailOpen:
	default:
		return invalid("failure_mode", "unknown failure mode %d", req.FailureMode)
	}
	return nil
}

// ValidateID reports whether s can be an entity id, a resource or a request id: 1 to 256
// characters from A-Z a-z 0-9 _ . : @ / + = - (the table's key separator '#' is not among them).
func ValidateID(s string) error {
	if err := storage.ValidateID(s); err != nil {
		return invalid("id", "%v", err)
	}
	return nil
}

func validateIDs(entityID, resource string) error {
	if err := storage.ValidateID(entityID); err != nil {
		return invalid("entity_id", "%v", err)
	}
	if err := storage.ValidateID(resource); err != nil {
		return invalid("resource", "%v", err)
	}
	if resource == storage.DefaultResource {
		return invalid("resource", "%q is reserved for an entity's default limits", resource)
	}
	return nil
}

func (l *Limiter) acquire(ctx context.Context, req AcquireRequest) (*Lease, error) {
	levels, err := l.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	lease := &Lease{l: l, id: newID(), entityID: req.EntityID, resource: req.Resource}
	var extras func(now int64) ([]storage.Extra, error)
	if req.LeaseTTL > 0 {
		lease.stored = true
		lease.id = storage.NewLeaseID(req.Principal, req.EntityID, req.Resource, req.RequestID)
		extras = func(now int64) ([]storage.Extra, error) {
			lease.expiresAt = time.UnixMilli(now).Add(req.LeaseTTL).UTC()
			item := storage.LeaseItem{ID: lease.id, EntityID: req.EntityID, Resource: req.Resource, State: storage.LeaseOpen,
				CreatedAt: now, ExpiresAt: lease.expiresAt.UnixMilli()}
			for _, lv := range levels {
				item.Levels = append(item.Levels, storage.LeaseLevel{EntityID: lv.entityID, Limits: toConfigs(lv.limits), Amounts: lv.amounts})
			}
			put, err := l.table.PutLease(item)
			return []storage.Extra{put}, err
		}
	}
	var statuses []LimitStatus
	if req.LeaseTTL > 0 {
		// The lease lives in the (child's) bucket item: one UpdateItem, and one to settle it;
		// with cascade, a transaction of the two buckets. Unless the item holds as many as it
		// may, or, for a request id, a request-bound lease of the item went to a lease item and
		// has not expired (so that a retried acquire never lands on both paths: see
		// docs/design.md, In-item leases).
		key := ""
		if req.RequestID != "" {
			key = storage.RequestKey(req.Principal, req.EntityID, req.Resource, req.RequestID)
		}
		for range 2 {
			statuses, err = l.charge(ctx, chargeRequest{resource: req.Resource, levels: levels, checked: true, inline: l.inlineAcquire(req, levels, lease), requestKey: key})
			if !errors.Is(err, errInlineFull) && !isFull(err) || isReplay(req, err) {
				break
			}
		}
		if errors.Is(err, errInlineFull) || isFull(err) && !isReplay(req, err) {
			lease.inline, lease.key, lease.secret = false, "", ""
			lease.id = storage.NewLeaseID(req.Principal, req.EntityID, req.Resource, req.RequestID)
			cr := chargeRequest{resource: req.Resource, levels: levels, checked: true, extras: extras, requestKey: key}
			if req.RequestID != "" {
				cr.inline = forwardAcquire(req)
			}
			statuses, err = l.charge(ctx, cr)
		}
	} else {
		statuses, err = l.charge(ctx, chargeRequest{resource: req.Resource, levels: levels, checked: true, extras: extras})
	}
	if isReplay(req, err) {
		// The request id's lease is in the bucket item: this is a retry of an acquire that was
		// written (in the item, by an earlier try).
		return l.replayInline(ctx, req, levels, err)
	}
	var xe *storage.ExtraConditionError
	if errors.As(err, &xe) && req.RequestID != "" && xe.Lease != nil {
		// The lease of this request id exists: this is a retry of an acquire that was written.
		return l.replay(ctx, xe.Lease.ID)
	}
	if errors.As(err, &xe) {
		// A random lease id that exists: not a state this limiter writes. Nothing was written.
		return nil, &UnavailableError{Op: "acquire", Err: err}
	}
	if err != nil {
		return nil, err
	}
	lease.levels = levels
	lease.statuses = statuses
	return lease, nil
}

// isReplay reports whether err is the failed write of a request-bound acquire that found the
// request's lease in its bucket item.
func isReplay(req AcquireRequest, err error) bool {
	var le *storage.LeaseEntryError
	if req.RequestID == "" || !errors.As(err, &le) {
		return false
	}
	_, ok := le.Replayed()
	return ok
}

// replayInline returns the in-item lease of a request id that the failed write of a repeated
// acquire found (isReplay), with the statuses of the item that write returned: no read. Its
// id is the first answer's as long as the lease was not adjusted, settled or its limits
// changed since; whatever it is, it names the same lease (key and secret). A lease expired
// (or settled more than storage.TombstoneMs ago) is not found, as on the lease-item path. A
// cascade lease's parent statuses come from the cached parent bucket, or one read of it.
func (l *Limiter) replayInline(ctx context.Context, req AcquireRequest, levels []level, err error) (*Lease, error) {
	var le *storage.LeaseEntryError
	errors.As(err, &le)
	e, _ := le.Replayed()
	now := l.nowMs()
	if e.ExpiresAt <= now {
		return nil, fmt.Errorf("%w: the lease of request %s", ErrLeaseNotFound, req.RequestID)
	}
	lease := &Lease{l: l, entityID: req.EntityID, resource: req.Resource, stored: true, inline: true, key: le.Key, secret: e.Secret,
		expiresAt: time.UnixMilli(e.ExpiresAt).UTC()}
	id := storage.InlineLeaseID{EntityID: req.EntityID, Resource: req.Resource, Key: le.Key,
		ExpiresAt: e.ExpiresAt, Limits: toConfigs(levels[0].limits), Amounts: e.Amounts, Secret: e.Secret}
	buckets := []*storage.Bucket{le.Current}
	lease.levels = []level{heldLevel(levels[0], e.Amounts)}
	if len(levels) > 1 && e.Parent != nil {
		lease.levels = append(lease.levels, heldLevel(levels[1], e.Parent))
		id.ParentID, id.ParentLimits, id.ParentAmounts = levels[1].entityID, toConfigs(levels[1].limits), e.Parent
		parent, ok := l.buckets.get(bucketID{levels[1].entityID, req.Resource})
		if !ok {
			if parent, err = l.table.GetBucket(ctx, levels[1].entityID, req.Resource); err != nil {
				return nil, &UnavailableError{Op: "get bucket", Err: err}
			}
		}
		buckets = append(buckets, parent)
	}
	lease.id = storage.FormatInlineLeaseID(id)
	switch e.State {
	case storage.LeaseCommitted:
		lease.state = leaseCommitted
	case storage.LeaseRolledBack:
		lease.state = leaseRolledBack
	}
	lease.statuses = statuses(req.Resource, lease.levels, buckets, now, nil)
	return lease, nil
}

// heldLevel returns lv holding amounts (those not zero).
func heldLevel(lv level, amounts map[string]int64) level {
	held := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}, acquires: 1}
	for name, x := range amounts {
		if x != 0 {
			held.amounts[name] = x
		}
	}
	return held
}

// replay returns the lease of an acquire repeated with the same request id, with the current
// status of its limits (one read per bucket: a retry is rare, and its caller wants headers).
func (l *Limiter) replay(ctx context.Context, id string) (*Lease, error) {
	lease, err := l.Lease(ctx, id)
	if err != nil {
		return nil, err
	}
	buckets := make([]*storage.Bucket, len(lease.levels))
	for i, lv := range lease.levels {
		if buckets[i], err = l.table.GetBucket(ctx, lv.entityID, lease.resource); err != nil {
			return nil, &UnavailableError{Op: "get bucket", Err: err}
		}
	}
	lease.statuses = statuses(lease.resource, lease.levels, buckets, l.nowMs(), nil)
	return lease, nil
}

// plan resolves the levels an acquire charges: limits (stored or given), cascade and amounts.
func (l *Limiter) plan(ctx context.Context, req AcquireRequest) ([]level, error) {
	ids := []string{req.EntityID}
	cascade := req.Cascade == CascadeOn
	if req.Cascade != CascadeOff {
		e, err := l.entity(ctx, req.EntityID)
		if err != nil {
			return nil, err
		}
		if e != nil && req.Cascade == CascadeDefault {
			cascade = e.Cascade
		}
		if cascade && e != nil && e.ParentID != "" {
			ids = append(ids, e.ParentID)
		}
	}
	perID := map[string][]Limit{}
	if req.UseStoredLimits {
		var err error
		if perID, err = l.resolveLimits(ctx, ids, req.Resource); err != nil {
			return nil, err
		}
	}
	levels := make([]level, 0, len(ids))
	for i, id := range ids {
		limits := perID[id]
		if limits == nil {
			limits = req.Limits
		}
		if len(limits) == 0 {
			return nil, invalid("limits", "entity %s has no stored limits for %s and the call gives none", id, req.Resource)
		}
		lv := level{entityID: id, limits: limits, amounts: map[string]int64{}, acquires: 1}
		for name, n := range req.Consume {
			lim, ok := findLimit(limits, name)
			if !ok {
				if i == 0 {
					return nil, invalid("consume."+name, "entity %s has no limit %q for %s", id, name, req.Resource)
				}
				continue // the parent has no such limit: nothing to take there
			}
			if n > lim.Capacity {
				return nil, invalid("consume."+name, "%d tokens exceed the capacity %d of entity %s: it can never be admitted", n, lim.Capacity, id)
			}
			if n > 0 {
				lv.amounts[name] = n * millis
			}
		}
		levels = append(levels, lv)
	}
	return levels, nil
}

func findLimit(ls []Limit, name string) (Limit, bool) {
	for _, l := range ls {
		if l.Name == name {
			return l, true
		}
	}
	return Limit{}, false
}

// charge writes the amounts of every level in one request, retrying when a guess about the
// current state was wrong. req.checked means an acquire: every amount must be available, or
// the call is refused with *RateLimitExceededError. Unchecked charges (adjustments, refunds)
// always apply. req.extras, when set, gives items written in the same transaction (a stored
// lease) for the write time; a failed condition on one is returned as
// *storage.ExtraConditionError. It returns the status of every limit after the write.
//
// Every bucket write carries a write id under the condition of its lane (see lanes), the same
// for every try of one call, so a resend of an applied write — by the SDK after a lost
// response, or by this loop after an error that leaves the outcome unknown — is recognised and
// applies once. Lost races (failed conditions, transaction conflicts) are contention, never
// unavailability: they are retried with jittered backoff, and after maxAttempts a checked
// charge is refused from the freshest state seen (*RateLimitExceededError with Contended) and
// an unchecked one returns *ContendedError. Only DynamoDB errors (unreachable, throttled past
// the SDK's retries) make an *UnavailableError.
//
// req.pending, when not nil, carries a write whose outcome a previous call left unknown: when
// *pending is set this call resends it under the same lane and write id (so it applies once),
// and on return *pending holds this call's write when its outcome is unknown, nil otherwise.
//
// req.inline, when set (one level only), gives the change of an in-item lease the write makes too,
// from the predicted bucket (nil: there is no room for one: errInlineFull). A failed condition
// on that lease is returned as *storage.LeaseEntryError.
func (l *Limiter) charge(ctx context.Context, req chargeRequest) ([]LimitStatus, error) {
	c := l.newCharge(req)
	defer c.release()
	for attempt := 0; attempt < l.maxAttempts; attempt++ {
		answer, done, err := c.try(ctx, attempt)
		if done {
			return answer, err
		}
	}
	return c.exhausted()
}

// chargeRequest is what charge writes: the amounts of levels on resource, how (checked), and
// what rides along (a pending write to resend, a stored lease's items, an in-item lease).
type chargeRequest struct {
	resource string
	levels   []level
	checked  bool
	pending  **pendingWrite
	extras   func(now int64) ([]storage.Extra, error)
	inline   func(now int64, pred *storage.Bucket) *storage.LeaseOp
	// requestKey, for a request-bound acquire, is its lease's key in the first level's item
	// (storage.RequestKey). Such a charge is never refused before its first write: it reads
	// nothing first, and a refusal from a state read during the call that holds the lease
	// answers it instead (*storage.LeaseEntryError), so a repeated acquire is found by its
	// write's condition (or the read) rather than refused after an earlier try took the tokens.
	requestKey string
}

// chargeRun is one charge under way: what it believes of each level's bucket, its lane and
// write id, and what its failed tries taught it.
type chargeRun struct {
	l *Limiter
	chargeRequest
	preds     []*storage.Bucket // the bucket of each level as last seen or predicted
	fresh     []bool            // preds[i] was read from DynamoDB during this call
	lane, wid string
	uncertain bool // a try may have been applied without this call knowing
	lastErr   error
	failures  int // tries that failed for another reason than a lost race
}

// newCharge starts a charge from the cached buckets, resending *req.pending when set.
func (l *Limiter) newCharge(req chargeRequest) *chargeRun {
	c := &chargeRun{l: l, chargeRequest: req, preds: make([]*storage.Bucket, len(req.levels)), fresh: make([]bool, len(req.levels))}
	for i, lv := range req.levels {
		c.preds[i], _ = l.buckets.get(bucketID{lv.entityID, req.resource})
	}
	if req.pending != nil && *req.pending != nil {
		c.lane, c.wid, c.uncertain = (*req.pending).lane, (*req.pending).wid, true
	} else {
		c.lane, c.wid = l.lanes.get(c.laneBucket()), l.lanes.newWriteID(l.nowMs())
	}
	return c
}

// laneBucket is the bucket whose lane the charge prefers (see lanes.get): its first level's.
func (c *chargeRun) laneBucket() bucketID {
	if len(c.levels) == 0 {
		return bucketID{resource: c.resource}
	}
	return bucketID{c.levels[0].entityID, c.resource}
}

// release returns the lane when the outcome is known; otherwise the write stays pending (and
// its lane out of the pool) for the caller to resend.
func (c *chargeRun) release() {
	switch {
	case !c.uncertain:
		c.l.lanes.put(c.lane, c.laneBucket())
		if c.pending != nil {
			*c.pending = nil
		}
	case c.pending != nil:
		*c.pending = &pendingWrite{lane: c.lane, wid: c.wid}
	}
}

// try makes one attempt; done reports that answer and err are the charge's result.
func (c *chargeRun) try(ctx context.Context, attempt int) (answer []LimitStatus, done bool, err error) {
	now := c.l.nowMs()
	// A single UpdateItem returns what it wrote: limits not charged are written too (an ADD of
	// 0), so that their statuses are read, not guessed. A transaction returns nothing.
	touch := len(c.levels) == 1 && c.extras == nil
	if !touch && c.requestKey == "" {
		// A transaction returns nothing: a stored bucket whose lanes this Limiter has not read
		// lately is read first (once per lanesKnownFor), so that its stale lanes are pruned.
		for i, p := range c.preds {
			if p != nil && !c.fresh[i] && !knowsLanes(p, now) {
				return c.readStale(ctx, i, now)
			}
		}
	}
	writes, idx, stale, denied := buildWrites(c.resource, c.levels, c.preds, c.fresh, c.checked, touch, now)
	if stale >= 0 {
		return c.readStale(ctx, stale, now)
	}
	if denied {
		return nil, true, c.refuse(ctx, now)
	}
	writes, idx, op, err := c.withLease(writes, idx, now)
	if err != nil {
		return nil, true, err
	}
	if touch && len(writes) == 1 && !knowsLanes(c.preds[idx[0]], now) {
		// Learn the item's lanes from this write's answer, so that later writes prune the stale
		// ones (see lanesKnownFor).
		writes[0].ReturnAll = true
	}
	opts := storage.WriteOptions{}
	if c.extras != nil {
		if opts.Extra, err = c.extras(now); err != nil {
			return nil, true, err
		}
	}
	if len(writes) == 0 && len(opts.Extra) == 0 {
		// Nothing to write (a refund to buckets that are gone): what is known is a guess.
		return markEstimated(statuses(c.resource, c.levels, c.preds, now, nil), c.levels, make([]*storage.Bucket, len(c.levels))), true, nil
	}
	images, err := c.l.table.WriteBuckets(ctx, writes, opts)
	if err == nil {
		c.uncertain = false // applied (or found applied): the lane is free again
		return c.written(writes, idx, images, now), true, nil
	}
	if stop := c.failed(ctx, err, op, idx, attempt, now); stop != nil {
		return nil, true, stop
	}
	return nil, false, nil
}

// readStale reads the bucket of a level whose limits changed while only a cached state is
// known: a re-base needs the stored one.
func (c *chargeRun) readStale(ctx context.Context, stale int, now int64) ([]LimitStatus, bool, error) {
	b, err := c.l.table.GetBucket(ctx, c.levels[stale].entityID, c.resource)
	if err != nil {
		return nil, true, &UnavailableError{Op: "charge", Err: err, Uncertain: c.uncertain}
	}
	if b != nil {
		b.LanesAt = now
	}
	c.preds[stale], c.fresh[stale] = b, true
	if c.uncertain && b.Lanes[c.lane] == c.wid {
		c.uncertain = false // the earlier try was applied: the outcome is known
		return statuses(c.resource, c.levels, c.preds, now, nil), true, nil
	}
	return nil, false, nil
}

// refuse answers a denied acquire. A refusal under changed limits re-bases them first, so that
// the next call, and Available, start from the new parameters instead of re-basing again from
// the old state (which refills at the old rate).
func (c *chargeRun) refuse(ctx context.Context, now int64) error {
	if c.requestKey != "" && c.fresh[0] && c.preds[0] != nil {
		if _, ok := c.preds[0].Leases[c.requestKey]; ok {
			return &storage.LeaseEntryError{Key: c.requestKey, Current: c.preds[0]} // a repeat: isReplay
		}
	}
	read := make([]*storage.Bucket, len(c.levels)) // the states read during this call
	for i, lv := range c.levels {
		if c.fresh[i] {
			c.preds[i] = c.l.rebase(ctx, c.resource, lv.entityID, lv.limits, c.preds[i], now)
			read[i] = c.preds[i]
		}
	}
	err := exceeded(c.resource, c.levels, c.preds, now, false)
	// A transaction refused by one level's condition returns only that item: the other
	// level's statuses are from this instance's cache, and say so. The refusal and its wait
	// are the levels' read now: a cached state neither refuses nor makes the caller wait.
	markEstimated(err.Statuses, c.levels, read)
	for k := range err.Statuses {
		if err.Statuses[k].Estimated {
			err.Statuses[k].Exceeded, err.Statuses[k].RetryAfter = false, 0
		}
	}
	err.RetryAfter = err.PrimaryViolation().RetryAfter
	return err
}

// withLease adds the in-item lease's change (if any) to the first write, and the lane, write id
// and lanes to prune to every write.
func (c *chargeRun) withLease(writes []storage.BucketWrite, idx []int, now int64) ([]storage.BucketWrite, []int, *storage.LeaseOp, error) {
	var op *storage.LeaseOp
	if c.inline != nil {
		if op = c.inline(now, c.preds[0]); op == nil {
			return nil, nil, nil, errInlineFull
		}
		j := slices.Index(idx, 0)
		if j < 0 {
			// Nothing charged at the lease's level (a commit, a refund of nothing there): the
			// lease's change is a write of its own to that bucket.
			writes = append([]storage.BucketWrite{{EntityID: c.levels[0].entityID, Resource: c.resource, Now: now, Acquires: c.levels[0].acquires}}, writes...)
			idx, j = append([]int{0}, idx...), 0
		}
		writes[j].Lease = op
	}
	for j := range writes {
		writes[j].Lane, writes[j].WriteID = c.lane, c.wid
		if p := c.preds[idx[j]]; p != nil && (c.fresh[idx[j]] || knowsLanes(p, now)) {
			writes[j].Prune = staleLanes(p, c.lane, now)
		}
	}
	return writes, idx, op, nil
}

// written records what an applied write left in each bucket and returns the statuses after it.
func (c *chargeRun) written(writes []storage.BucketWrite, idx []int, images []*storage.Bucket, now int64) []LimitStatus {
	read := make([]*storage.Bucket, len(c.levels)) // what DynamoDB answered, by level
	for j, w := range writes {
		i := idx[j]
		switch {
		case j < len(images) && images[j] != nil && images[j].Partial:
			read[i], c.preds[i] = images[j], withLanes(mergeWritten(c.preds[i], images[j]), c.preds[i], w)
		case j < len(images) && images[j] != nil:
			// The whole item (a resend found applied, or a write that asked for it).
			images[j].LanesAt, images[j].LeasesAt = now, now
			read[i], c.preds[i] = images[j], images[j]
		default:
			c.preds[i] = withLanes(applyWrite(c.preds[i], w), c.preds[i], w)
		}
		c.preds[i] = withLease(c.preds[i], w.Lease)
		c.l.buckets.put(bucketID{c.levels[i].entityID, c.resource}, c.preds[i])
	}
	return markEstimated(statuses(c.resource, c.levels, c.preds, now, nil), c.levels, read)
}

// failed learns from a failed write and waits before the next try; a non-nil result ends the
// charge with that error.
func (c *chargeRun) failed(ctx context.Context, err error, op *storage.LeaseOp, idx []int, attempt int, now int64) error {
	c.lastErr = err
	var cf *storage.ConditionFailedError
	var xe *storage.ExtraConditionError
	switch {
	case errors.As(err, &xe):
		return err
	case errors.As(err, &cf):
		for _, f := range cf.Failed {
			i := idx[f.Index]
			cur := f.Current
			if cur == nil {
				cur = &storage.Bucket{EntityID: c.levels[i].entityID, Resource: c.resource, Limits: map[string]storage.LimitState{}}
			}
			cur.LeasesAt, cur.LanesAt = now, now
			c.preds[i], c.fresh[i] = cur, true
			c.l.buckets.put(bucketID{c.levels[i].entityID, c.resource}, cur)
			if op != nil && i == 0 && !op.Holds(f.Current, now) { // the lease is in the first level's item
				return &storage.LeaseEntryError{Key: op.Key, Secret: op.Secret, Current: f.Current}
			}
		}
		// The lane's id in a current item is not this call's: no earlier try was applied.
		c.uncertain = false
		if attempt >= 2 {
			// Lost the race on a hot bucket more than once: spread the writers out.
			if err := backoff(ctx, attempt); err != nil {
				return &UnavailableError{Op: "charge", Err: err, Uncertain: c.uncertain}
			}
		}
	case errors.Is(err, storage.ErrConflict):
		if err := backoff(ctx, attempt+2); err != nil {
			return &UnavailableError{Op: "charge", Err: err, Uncertain: c.uncertain}
		}
	default:
		// DynamoDB failed (after the SDK's own retries), or the call's context ended: the write
		// may have been applied. Resend it a few times with the same write id to learn which;
		// then give up as unavailable.
		c.uncertain = true
		for i := range c.fresh {
			c.fresh[i] = false // decide nothing from states this try may have changed
		}
		c.failures++
		if c.failures >= unavailableTries || ctx.Err() != nil {
			return &UnavailableError{Op: "charge", Err: err, Uncertain: true}
		}
		if err := backoff(ctx, attempt+3); err != nil {
			return &UnavailableError{Op: "charge", Err: err, Uncertain: true}
		}
	}
	return nil
}

// exhausted answers a charge whose every attempt lost a race or failed.
func (c *chargeRun) exhausted() ([]LimitStatus, error) {
	if c.uncertain {
		return nil, &UnavailableError{Op: "charge", Err: c.lastErr, Uncertain: true}
	}
	if c.checked {
		// Still contended: refuse from the freshest state seen. DynamoDB is healthy, so this is a
		// refusal to retry soon, never unavailability (nor a fail-open admit).
		return nil, exceeded(c.resource, c.levels, c.preds, c.l.nowMs(), true)
	}
	return nil, &ContendedError{Op: "charge", Attempts: c.l.maxAttempts, Err: c.lastErr}
}

// MaxInlineLeases is how many leases (open, or settled and not yet expired) one bucket item
// keeps in itself; an acquire beyond them stores its lease in an item of its own (a two-item
// transaction). Six leases of two limits keep a bucket item well under 1 KB (about 560 bytes
// with one writer lane), so each write of it costs 1 WCU.
const MaxInlineLeases = 6

// inlineAcquire returns the in-item lease an acquire of lv records (see charge), and sets the
// lease's id and expiry to it. An expired entry the predicted bucket shows is removed in the
// same write; with the item full of live ones it returns nil.
//
// With a request id the lease's key is the request's (storage.RequestKey), so a retried acquire
// targets the same entry and finds it (isReplay); it gets a random secret, which its id
// carries. A request-bound lease is not recorded while the predicted bucket shows a
// request-bound lease of the item forwarded to a lease item and not yet expired (the write's
// condition checks it too).
//
// With cascade (levels holds the parent too) the entry, in the child's item, also holds the
// parent's amounts, and the acquire is a transaction of the two buckets.
func (l *Limiter) inlineAcquire(req AcquireRequest, levels []level, lease *Lease) func(int64, *storage.Bucket) *storage.LeaseOp {
	lv := levels[0]
	key, secret := storage.NewInlineKey(), ""
	if req.RequestID != "" {
		key, secret = storage.RequestKey(req.Principal, req.EntityID, req.Resource, req.RequestID), storage.NewInlineKey()
	}
	var expires int64 // fixed at the first try: a resend must record what the id says
	return func(now int64, pred *storage.Bucket) *storage.LeaseOp {
		if expires == 0 {
			expires = now + req.LeaseTTL.Milliseconds()
		}
		op := &storage.LeaseOp{Key: key, Create: true, Max: MaxInlineLeases, ExpiresAt: expires, Secret: secret, Request: req.RequestID != "",
			Amounts: make(map[string]int64, len(lv.limits))}
		if op.Request && pred != nil && pred.Forwarded >= now {
			return nil // AttrForwarded only grows: the item's is at least this
		}
		for _, lim := range lv.limits {
			op.Amounts[lim.Name] = lv.amounts[lim.Name]
		}
		if len(levels) > 1 {
			op.ParentAmounts = make(map[string]int64, len(levels[1].limits))
			for _, lim := range levels[1].limits {
				op.ParentAmounts[lim.Name] = levels[1].amounts[lim.Name]
			}
		}
		if pred != nil && pred.LeaseCount >= MaxInlineLeases && pred.Leases != nil {
			for k, e := range pred.Leases {
				if e.ExpiresAt <= now && len(op.Prune) < maxPrune {
					if op.Prune == nil {
						op.Prune = map[string]int64{}
					}
					op.Prune[k] = e.ExpiresAt
				}
			}
			// Full of live leases as last read: a lease item, unless that read is older than a
			// tombstone lives (other processes may have settled since: try, and a failure
			// returns the item).
			if pred.LeaseCount-int64(len(op.Prune)) >= MaxInlineLeases && now-pred.LeasesAt < storage.TombstoneMs {
				return nil
			}
		}
		lease.inline, lease.key, lease.secret = true, key, secret
		lease.expiresAt = time.UnixMilli(op.ExpiresAt).UTC()
		id := storage.InlineLeaseID{EntityID: req.EntityID, Resource: req.Resource, Key: key,
			ExpiresAt: op.ExpiresAt, Limits: toConfigs(lv.limits), Amounts: op.Amounts, Secret: secret}
		if len(levels) > 1 {
			id.ParentID, id.ParentLimits, id.ParentAmounts = levels[1].entityID, toConfigs(levels[1].limits), op.ParentAmounts
		}
		lease.id = storage.FormatInlineLeaseID(id)
		return op
	}
}

// forwardAcquire returns the bucket's part of a request-bound acquire whose lease goes to a
// lease item (the item is full, or forwarded one before): on the condition that the item holds
// no lease of the request (an earlier try recorded there is found: isReplay), raising the
// item's storage.AttrForwarded to the lease's expiry, so that no later try of the request
// creates its lease in the item while this one lives.
func forwardAcquire(req AcquireRequest) func(int64, *storage.Bucket) *storage.LeaseOp {
	key := storage.RequestKey(req.Principal, req.EntityID, req.Resource, req.RequestID)
	return func(now int64, pred *storage.Bucket) *storage.LeaseOp {
		op := &storage.LeaseOp{Key: key, Forward: true}
		// The lease item's expiry (acquire's extras, from the same now).
		if until := time.UnixMilli(now).Add(req.LeaseTTL).UnixMilli(); pred == nil || pred.Forwarded < until {
			op.ForwardUntil = until
		}
		return op
	}
}

// isFull reports whether err is the failed condition of an in-item lease's acquire.
func isFull(err error) bool {
	var le *storage.LeaseEntryError
	return errors.As(err, &le)
}

// withLease returns the predicted bucket b after op was written.
func withLease(b *storage.Bucket, op *storage.LeaseOp) *storage.Bucket {
	if b != nil && op != nil && op.Forward {
		out := *b
		out.Forwarded = max(out.Forwarded, op.ForwardUntil)
		return &out
	}
	if b == nil || b.Leases == nil || op == nil {
		return b // unknown entries stay unknown
	}
	out := *b
	out.Leases = make(map[string]storage.InlineLease, len(b.Leases)+1)
	for k, e := range b.Leases {
		if _, pruned := op.Prune[k]; !pruned {
			out.Leases[k] = e
		}
	}
	switch e, ok := out.Leases[op.Key]; {
	case op.Create:
		out.Leases[op.Key] = storage.InlineLease{State: storage.LeaseOpen, ExpiresAt: op.ExpiresAt, Amounts: op.Amounts, Secret: op.Secret}
	case ok && op.To != "":
		e.State, e.ExpiresAt = op.To, b.UpdatedAt+storage.TombstoneMs // about when it can go
		out.Leases[op.Key] = e
	}
	return &out
}

// errInlineFull means a bucket has no room for another in-item lease.
var errInlineFull = errors.New("limiter: no room for an in-item lease")

// pendingWrite is a write whose outcome is unknown: its lane and write id.
type pendingWrite struct{ lane, wid string }

// unavailableTries is how many tries of one write may fail with a DynamoDB error (each after
// the SDK's own retries) before the call reports it unavailable.
const unavailableTries = 3

// rebase writes the limits of b whose parameters differ from limits in the new parameters, at
// the same level at now (one conditional UpdateItem, nothing consumed), and returns the bucket
// after it. A failed condition (another writer was first) or error leaves it to the next call:
// what is returned is then the freshest state known, with the re-base still computed at read.
func (l *Limiter) rebase(ctx context.Context, resource, entity string, limits []Limit, b *storage.Bucket, now int64) *storage.Bucket {
	if b == nil {
		return b
	}
	w := storage.BucketWrite{EntityID: entity, Resource: resource, Now: now}
	for _, lim := range limits {
		st, ok := b.Limits[lim.Name]
		if p := params(lim); ok && st.Params != p {
			w.Limits = append(w.Limits, storage.LimitWrite{Name: lim.Name, Mode: storage.Replace, Params: p,
				Value: p.Rebase(st.Params, st.State, now), Expect: st})
		}
	}
	if len(w.Limits) == 0 {
		return b
	}
	images, err := l.table.WriteBuckets(ctx, []storage.BucketWrite{w}, storage.WriteOptions{})
	var cf *storage.ConditionFailedError
	switch {
	case err == nil:
		b = mergeWritten(b, images[0])
	case errors.As(err, &cf) && cf.Failed[0].Current != nil:
		b = cf.Failed[0].Current
	default:
		return b
	}
	l.buckets.put(bucketID{entity, resource}, b)
	return b
}

// markEstimated labels as estimates the statuses of the limits whose state DynamoDB did not
// return: read[i] is what it returned for level i (nil: nothing; a Partial bucket: the limits
// written).
func markEstimated(out []LimitStatus, levels []level, read []*storage.Bucket) []LimitStatus {
	for k := range out {
		for i, lv := range levels {
			if out[k].EntityID != lv.entityID {
				continue
			}
			b := read[i]
			_, written := b.LimitsOrNil()[out[k].Limit.Name]
			out[k].Estimated = b == nil || b.Partial && !written
		}
	}
	return out
}

// mergeWritten returns pred with the limits and counters a write returned (a Partial bucket).
func mergeWritten(pred, got *storage.Bucket) *storage.Bucket {
	b := &storage.Bucket{EntityID: got.EntityID, Resource: got.Resource, Limits: map[string]storage.LimitState{}, UpdatedAt: got.UpdatedAt}
	if pred != nil {
		for k, v := range pred.Limits {
			b.Limits[k] = v
		}
		b.Acquires = pred.Acquires
	}
	for k, v := range got.Limits {
		b.Limits[k] = v
	}
	if got.Acquires != 0 {
		b.Acquires = got.Acquires
	}
	if pred != nil {
		b.Leases, b.LeaseCount, b.LeasesAt, b.Forwarded = pred.Leases, pred.LeaseCount, pred.LeasesAt, pred.Forwarded
	}
	if got.LeaseCountSet {
		b.LeaseCount = got.LeaseCount
	}
	return b
}

// buildWrites turns levels into bucket writes from the predicted states. idx maps each write
// back to its level. denied is true when a fresh state shows a checked amount unavailable;
// stale ≥ 0 names a level whose stored state must be read first. A checked charge of only
// zeros writes each level's acquire counter alone, so it is counted and its statuses are read
// from the items the write returns.
//
// With touch, a level that is written also writes the limits it does not charge, as an ADD of
// 0 under their stored parameters (when its predicted state has them), so that a single
// UpdateItem's answer carries every limit.
func buildWrites(resource string, levels []level, preds []*storage.Bucket, fresh []bool, checked, touch bool, now int64) (writes []storage.BucketWrite, idx []int, stale int, denied bool) {
	defer func() {
		if checked && stale < 0 && !denied && len(writes) == 0 {
			for i, lv := range levels {
				w := storage.BucketWrite{EntityID: lv.entityID, Resource: resource, Now: now, Acquires: lv.acquires, Create: preds[i] == nil}
				if touch && preds[i] != nil {
					w.Limits = touches(lv, preds[i])
				}
				writes = append(writes, w)
				idx = append(idx, i)
			}
		}
	}()
	for i, lv := range levels {
		w := storage.BucketWrite{EntityID: lv.entityID, Resource: resource, Now: now, Acquires: lv.acquires, Create: preds[i] == nil}
		for _, lim := range lv.limits {
			x := lv.amounts[lim.Name]
			if x == 0 {
				continue
			}
			lw, ok, deny := limitWrite(lim, x, preds[i], fresh[i], checked, now)
			if deny {
				return nil, nil, -1, true
			}
			if lw.Mode == storage.Replace && !fresh[i] {
				return nil, nil, i, false
			}
			if ok {
				w.Limits = append(w.Limits, lw)
			}
		}
		if len(w.Limits) == 0 {
			continue // nothing to charge at this level (a refund to a bucket that is gone)
		}
		if touch && preds[i] != nil {
			w.Limits = append(w.Limits, touches(lv, preds[i])...)
		}
		writes = append(writes, w)
		idx = append(idx, i)
	}
	return writes, idx, -1, false
}

// touches returns an ADD of 0 to every limit of lv it does not charge that pred has, under its
// stored parameters: written only so that the write's answer carries it.
func touches(lv level, pred *storage.Bucket) []storage.LimitWrite {
	var out []storage.LimitWrite
	for _, lim := range lv.limits {
		if st, ok := pred.Limits[lim.Name]; ok && lv.amounts[lim.Name] == 0 {
			out = append(out, storage.LimitWrite{Name: lim.Name, Mode: storage.Add, Params: st.Params})
		}
	}
	return out
}

// limitWrite chooses the conditional write of x millitokens on one limit. ok is false when
// there is nothing to write (a refund to a limit no longer stored).
func limitWrite(lim Limit, x int64, pred *storage.Bucket, fresh, checked bool, now int64) (lw storage.LimitWrite, ok, deny bool) {
	p := params(lim)
	var st storage.LimitState
	known := false
	if pred != nil {
		st, known = pred.Limits[lim.Name]
	}
	lw = storage.LimitWrite{Name: lim.Name, Consumed: x}
	switch {
	case !known && x < 0:
		if pred != nil && fresh {
			return lw, false, false // the limit is gone: there is nothing to refund into
		}
		// Guess it is stored with these params; a wrong guess returns the truth.
		lw.Mode, lw.Params, lw.Value = storage.Add, p, p.Delta(x)
	case !known && !checked && !(pred != nil && fresh):
		// An adjustment from a process that has not seen the bucket (a lease settled by another
		// Lambda instance): guess the limit is stored with these params, as for a refund.
		lw.Mode, lw.Params, lw.Value = storage.Add, p, p.Delta(x)
	case !known:
		lw.Mode, lw.Params, lw.Value, lw.Floor = storage.SetFull, p, p.ChargeFull(now, x), p.Floor(now)
	case st.Params != p && checked:
		// The limit changed since the bucket was written: re-base it to the new parameters.
		// The write is conditional on the exact stored state, so it is built only from a fresh
		// one (buildWrites asks for a read otherwise).
		e := p.Rebase(st.Params, st.State, now)
		if fresh && p.Level(e, now) < x {
			return lw, false, true
		}
		lw.Mode, lw.Params, lw.Value, lw.Expect = storage.Replace, p, p.Charge(e, now, x), st
	default:
		// Unchecked charges use the stored parameters: tokens are tokens whatever the units.
		if !checked {
			p = st.Params
		}
		if checked && fresh && p.Level(st.State, now) < x {
			return lw, false, true
		}
		lw.Params = p
		switch {
		case x > 0 && p.Full(st.State, now):
			lw.Mode, lw.Value, lw.Floor = storage.SetFull, p.ChargeFull(now, x), p.Floor(now)
		case x > 0:
			floor := p.Floor(now)
			lw.Mode, lw.Value, lw.Min = storage.Add, p.Delta(x), &floor
			if checked {
				ceil := p.Ceiling(now, x)
				lw.Max = &ceil
			}
		default:
			lw.Mode, lw.Value = storage.Add, p.Delta(x)
		}
	}
	return lw, true, false
}

// applyWrite returns the predicted bucket after a successful write (for transactions, which
// return no item).
func applyWrite(pred *storage.Bucket, w storage.BucketWrite) *storage.Bucket {
	b := &storage.Bucket{EntityID: w.EntityID, Resource: w.Resource, Limits: map[string]storage.LimitState{}, UpdatedAt: w.Now}
	if pred != nil {
		for k, v := range pred.Limits {
			b.Limits[k] = v
		}
		b.Acquires = pred.Acquires
		b.Leases, b.LeaseCount, b.LeasesAt, b.Forwarded = pred.Leases, pred.LeaseCount, pred.LeasesAt, pred.Forwarded
	}
	if w.Lease != nil && w.Lease.Create {
		b.LeaseCount += 1 - int64(len(w.Lease.Prune))
	}
	b.Acquires += w.Acquires
	for _, lw := range w.Limits {
		st := b.Limits[lw.Name]
		st.Params = lw.Params
		if lw.Mode == storage.Add {
			st.State = st.State.Add(lw.Value)
		} else {
			st.State = lw.Value
		}
		st.Consumed = st.Consumed.Add(tokenbucket.I128(lw.Consumed))
		b.Limits[lw.Name] = st
	}
	return b
}

// state returns a limit's state in bucket b under the limit's current parameters; a limit not
// stored is full.
func state(lim Limit, b *storage.Bucket, now int64) tokenbucket.Int128 {
	p := params(lim)
	if b != nil {
		if st, ok := b.Limits[lim.Name]; ok {
			if st.Params == p {
				return st.State
			}
			return p.Rebase(st.Params, st.State, now)
		}
	}
	return p.Floor(now)
}

// statuses returns the status of every limit of every level. requested, when set, gives the
// amounts a refused acquire asked for (the levels' amounts otherwise).
func statuses(resource string, levels []level, buckets []*storage.Bucket, now int64, requested []map[string]int64) []LimitStatus {
	var out []LimitStatus
	for i, lv := range levels {
		amounts := lv.amounts
		if requested != nil {
			amounts = requested[i]
		}
		for _, lim := range lv.limits {
			p := params(lim)
			e := state(lim, buckets[i], now)
			x := max(amounts[lim.Name], 0)
			s := LimitStatus{
				EntityID: lv.entityID, Resource: resource, Limit: lim,
				Available: floorDiv(p.Level(e, now), millis), Requested: x / millis,
			}
			// Only limits the call consumes can refuse it, or make it wait.
			if requested != nil && x > 0 && p.Level(e, now) < x {
				s.Exceeded = true
				if ms, ok := p.Wait(e, now, x); ok {
					s.RetryAfter = msDuration(ms)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// msDuration converts ms to a Duration, saturating at the longest Duration (about 292 years)
// instead of overflowing.
func msDuration(ms int64) time.Duration {
	if ms >= math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(max(ms, 0)) * time.Millisecond
}

// exceeded builds the refusal of a checked charge from the states it saw. contended marks a
// refusal after lost races: its wait is at least contentionRetry.
func exceeded(resource string, levels []level, buckets []*storage.Bucket, now int64, contended bool) *RateLimitExceededError {
	req := make([]map[string]int64, len(levels))
	for i, lv := range levels {
		req[i] = lv.amounts
	}
	e := &RateLimitExceededError{Statuses: statuses(resource, levels, buckets, now, req), Contended: contended}
	e.RetryAfter = e.PrimaryViolation().RetryAfter
	if contended {
		e.RetryAfter = max(e.RetryAfter, contentionRetry)
	}
	return e
}

// contentionRetry is the wait a refusal for contention advises.
const contentionRetry = 100 * time.Millisecond

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func sleep(ctx context.Context, attempt int) error {
	d := min(10*time.Millisecond<<attempt, 500*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// newID returns 128 random bits in hex: lease ids cannot be guessed.
func newID() string { return randid.Hex() }
