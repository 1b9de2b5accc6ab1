package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// FailureMode says what Acquire does when DynamoDB cannot be reached or refuses a request.
type FailureMode int

const (
	// FailureModeDefault uses the limiter's mode (FailClosed unless WithFailureMode says
	// otherwise). It is the zero value of AcquireRequest.FailureMode.
	FailureModeDefault FailureMode = iota
	// FailClosed returns an *UnavailableError: no request is admitted unchecked.
	FailClosed
	// FailOpen admits the request with a degraded lease that writes nothing.
	FailOpen
)

// Cascade says whether an acquire also consumes from the entity's parent.
type Cascade int

const (
	// CascadeDefault follows the entity's stored cascade setting (false for an entity that is
	// not stored). It is the zero value of AcquireRequest.Cascade.
	CascadeDefault Cascade = iota
	// CascadeOn consumes from the parent too, when the entity has one.
	CascadeOn
	// CascadeOff consumes from the entity alone.
	CascadeOff
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

		auditRetention: c.auditRetention,
	}
}

// CreateTable creates the limiter's table if it is missing (for DynamoDB Local and tests; in
// AWS the CDK stack owns it). It is idempotent.
func (l *Limiter) CreateTable(ctx context.Context) error { return l.table.CreateTable(ctx) }

// Table returns the storage the limiter uses.
func (l *Limiter) Table() *storage.Table { return l.table }

// nowMs returns the limiter's clock in Unix ms.
func (l *Limiter) nowMs() int64 { return l.now().UnixMilli() }

// AcquireRequest describes one acquire.
type AcquireRequest struct {
	EntityID string
	Resource string
	// Limits are the limits to check. With UseStoredLimits they are the fallback when nothing is
	// stored for the entity, the resource or the system.
	Limits []Limit
	// Consume maps limit names to whole tokens to take (≥ 0). Every name must be a limit of the
	// entity; a limit not named is checked for nothing.
	Consume         map[string]int64
	Cascade         Cascade
	UseStoredLimits bool
	FailureMode     FailureMode
	// LeaseTTL, when positive, stores the lease in the table (in the same transaction as the
	// consumption) so that any process can resume it by id with Limiter.Lease until it
	// expires. At most MaxLeaseTTL. A stored lease costs one more item per write.
	LeaseTTL time.Duration
	// RequestID makes a retried acquire idempotent: an acquire with the same entity, resource
	// and request id returns the lease of the first and consumes nothing. It needs LeaseTTL.
	RequestID string
}

// MaxLeaseTTL is the longest a stored lease lives.
const MaxLeaseTTL = 24 * time.Hour

// MaxRequestIDLength is the longest request id.
const MaxRequestIDLength = 256

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
// Failing open, a DynamoDB failure returns a degraded lease instead (Lease.Degraded).
func (l *Limiter) Acquire(ctx context.Context, req AcquireRequest) (*Lease, error) {
	if err := validateAcquire(req); err != nil {
		return nil, err
	}
	lease, err := l.acquire(ctx, req)
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) && l.mode(req.FailureMode) == FailOpen {
		l.log.WarnContext(ctx, "limiter unavailable; admitting (fail open)",
			"entity_id", req.EntityID, "resource", req.Resource, "error", err.Error())
		return &Lease{l: l, id: newID(), entityID: req.EntityID, resource: req.Resource, degraded: true}, nil
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
		lease.id = storage.NewLeaseID(req.EntityID, req.Resource, req.RequestID)
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
	statuses, err := l.charge(ctx, req.Resource, levels, true, nil, extras)
	var xe *storage.ExtraConditionError
	if errors.As(err, &xe) && req.RequestID != "" {
		// The lease of this request id exists: this is a retry of an acquire that was written.
		return l.replay(ctx, storage.LeaseIDOf(xe.Item))
	}
	if err != nil {
		return nil, err
	}
	lease.levels = levels
	lease.statuses = statuses
	return lease, nil
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
// current state was wrong. checked means an acquire: every amount must be available, or the
// call is refused with *RateLimitExceededError. Unchecked charges (adjustments, refunds) always
// apply. A non-nil idem makes the write an idempotent transaction (refunds). extras, when set,
// gives items written in the same transaction (a stored lease) for the write time; a failed
// condition on one is returned as *storage.ExtraConditionError. It returns the status of every
// limit after the write.
func (l *Limiter) charge(ctx context.Context, resource string, levels []level, checked bool, idem *idempotency, extras func(now int64) ([]storage.Extra, error)) ([]LimitStatus, error) {
	preds := make([]*storage.Bucket, len(levels))
	fresh := make([]bool, len(levels))
	for i, lv := range levels {
		preds[i], _ = l.buckets.get(bucketID{lv.entityID, resource})
	}
	var lastErr error
	for attempt := 0; attempt < l.maxAttempts; attempt++ {
		now := l.nowMs()
		tok := ""
		if idem != nil {
			if idem.now == 0 {
				idem.now = now
			}
			now, tok = idem.now, idem.token()
		}
		writes, idx, stale, denied := buildWrites(resource, levels, preds, fresh, checked, now)
		if stale >= 0 {
			// A limit changed and only a cached state is known: a re-base needs the stored one.
			b, err := l.table.GetBucket(ctx, levels[stale].entityID, resource)
			if err != nil {
				return nil, &UnavailableError{Op: "charge", Err: err}
			}
			preds[stale], fresh[stale] = b, true
			continue
		}
		if denied {
			return nil, exceeded(resource, levels, preds, now)
		}
		opts := storage.WriteOptions{Token: tok}
		if extras != nil {
			var err error
			if opts.Extra, err = extras(now); err != nil {
				return nil, err
			}
		}
		if len(writes) == 0 && len(opts.Extra) == 0 {
			return statuses(resource, levels, preds, now, nil), nil
		}
		images, err := l.table.WriteBuckets(ctx, writes, opts)
		if err == nil {
			for j, w := range writes {
				i := idx[j]
				if images != nil {
					preds[i] = images[j]
				} else {
					preds[i] = applyWrite(preds[i], w)
				}
				l.buckets.put(bucketID{levels[i].entityID, resource}, preds[i])
			}
			return statuses(resource, levels, preds, now, nil), nil
		}
		var cf *storage.ConditionFailedError
		var xe *storage.ExtraConditionError
		switch {
		case errors.As(err, &xe):
			if idem != nil {
				idem.failed(l.nowMs())
			}
			return nil, err
		case errors.As(err, &cf):
			for _, f := range cf.Failed {
				i := idx[f.Index]
				cur := f.Current
				if cur == nil {
					cur = &storage.Bucket{EntityID: levels[i].entityID, Resource: resource, Limits: map[string]storage.LimitState{}}
				}
				preds[i], fresh[i] = cur, true
				l.buckets.put(bucketID{levels[i].entityID, resource}, cur)
			}
			if attempt >= 2 {
				// Lost the race on a hot bucket more than once: spread the writers out.
				if err := jitter(ctx, attempt); err != nil {
					return nil, &UnavailableError{Op: "charge", Err: err}
				}
			}
		case errors.Is(err, storage.ErrConflict):
			if err := sleep(ctx, attempt); err != nil {
				return nil, &UnavailableError{Op: "charge", Err: err}
			}
		default:
			return nil, &UnavailableError{Op: "charge", Err: err}
		}
		if idem != nil {
			idem.failed(l.nowMs()) // nothing was written: the next try is a new request
		}
		lastErr = err
	}
	return nil, &UnavailableError{Op: "charge", Err: fmt.Errorf("still contended after %d attempts: %w", l.maxAttempts, lastErr)}
}

// buildWrites turns levels into bucket writes from the predicted states. idx maps each write
// back to its level. denied is true when a fresh state shows a checked amount unavailable;
// stale ≥ 0 names a level whose stored state must be read first.
func buildWrites(resource string, levels []level, preds []*storage.Bucket, fresh []bool, checked bool, now int64) (writes []storage.BucketWrite, idx []int, stale int, denied bool) {
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
		writes = append(writes, w)
		idx = append(idx, i)
	}
	return writes, idx, -1, false
}

// limitWrite chooses the conditional write of x millitokens on one limit. ok is false when
// there is nothing to write (a refund to a limit no longer stored).
func limitWrite(lim Limit, x int64, pred *storage.Bucket, fresh, checked bool, now int64) (lw storage.LimitWrite, ok, deny bool) {
	p := lim.params()
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
		st.Consumed += lw.Consumed
		b.Limits[lw.Name] = st
	}
	return b
}

// state returns a limit's state in bucket b under the limit's current parameters; a limit not
// stored is full.
func state(lim Limit, b *storage.Bucket, now int64) tokenbucket.Int128 {
	p := lim.params()
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
			p := lim.params()
			e := state(lim, buckets[i], now)
			x := max(amounts[lim.Name], 0)
			s := LimitStatus{
				EntityID: lv.entityID, Resource: resource, Limit: lim,
				Available: floorDiv(p.Level(e, now), millis), Requested: x / millis,
			}
			if requested != nil && p.Level(e, now) < x {
				s.Exceeded = true
				if ms, ok := p.Wait(e, now, x); ok {
					s.RetryAfter = time.Duration(ms) * time.Millisecond
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// exceeded builds the refusal of a checked charge from the states it saw.
func exceeded(resource string, levels []level, buckets []*storage.Bucket, now int64) error {
	req := make([]map[string]int64, len(levels))
	for i, lv := range levels {
		req[i] = lv.amounts
	}
	e := &RateLimitExceededError{Statuses: statuses(resource, levels, buckets, now, req)}
	e.RetryAfter = e.PrimaryViolation().RetryAfter
	return e
}

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

// idempotency names a refund so that DynamoDB applies it at most once (ClientRequestToken, ten
// minutes). A retry whose previous outcome is unknown must send the same request with the same
// token, so the token and the write time change only after a definite failure.
type idempotency struct {
	base string
	seq  int
	now  int64 // Unix ms used by every try of the current token; 0 until the first try
}

func (t *idempotency) token() string { return fmt.Sprintf("%s-%d", t.base, t.seq) }

// failed records that the current token's request was not written.
func (t *idempotency) failed(now int64) { t.seq, t.now = t.seq+1, now }

// jitter waits a random 0 to 2^attempt ms (at most 64 ms) so that writers contending for one
// item stop colliding in lockstep.
func jitter(ctx context.Context, attempt int) error {
	d := time.Duration(mathrand.Int64N(int64(min(time.Millisecond<<attempt, 64*time.Millisecond))))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// newID returns 128 random bits in hex: lease ids cannot be guessed.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
