package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

type leaseState int

const (
	leaseOpen leaseState = iota
	leaseCommitted
	leaseRolledBack
)

// A Lease is what an Acquire took. The consumption is written when the lease is made; Adjust
// changes it (LLM token reconciliation), Commit keeps it, Rollback puts all of it back.
//
// A lease lives in memory, or, when acquired with a LeaseTTL, in the table too (in its bucket
// item when it charged one bucket and there was room, see MaxInlineLeases; otherwise in an
// item of its own): then any process can resume it with Limiter.Lease, and its state (open,
// committed, rolled back) and
// the amounts it holds are kept by DynamoDB's conditions, so a commit in one process and a
// rollback in another cannot both happen, and a refund can never exceed what the lease holds.
// A Lease is safe for concurrent use.
type Lease struct {
	l         *Limiter
	id        string
	entityID  string
	resource  string
	degraded  bool
	cause     *UnavailableError // why a degraded lease was granted
	stored    bool
	expiresAt time.Time
	// inline is true for a stored lease kept in its bucket item (see storage.LeaseOp), under key.
	inline bool
	key    string
	secret string // a request-bound in-item lease's secret (storage.InlineLease.Secret)
	// guessed is true while an in-item lease's amounts are those its id carries, not yet
	// confirmed by a write or a read of its item.
	guessed bool

	mu       sync.Mutex
	levels   []level // amounts: millitokens held, by level and limit
	statuses []LimitStatus
	state    leaseState
	keys     map[string]bool // idempotency keys of the adjustments applied (in-memory lease)
	// pending is a write of this lease whose outcome is unknown: a rollback, or the adjustment
	// of pendingKey. Retrying that call resends it, so it applies once.
	pending        *pendingWrite
	pendingKey     string
	pendingAmounts map[string]int64
}

// ID returns the lease's id: 32 random hex digits; for a stored lease kept in its bucket item
// (one level), "b." and base64url of what settling it needs (its 128-bit random key, or, with
// a request id, the key derived from the request and a 128-bit random secret); for another
// stored lease acquired with a request id, 64 hex digits naming the request, '-', and 32 random
// hex digits. None can be guessed.
func (s *Lease) ID() string { return s.id }

// EntityID returns the entity the lease charged.
func (s *Lease) EntityID() string { return s.entityID }

// Resource returns the resource the lease charged.
func (s *Lease) Resource() string { return s.resource }

// Degraded reports whether the lease was granted without DynamoDB (fail open): it took nothing,
// and its Adjust, Commit and Rollback write nothing.
func (s *Lease) Degraded() bool { return s.degraded }

// DegradedCause returns why a degraded lease was granted: the DynamoDB failure (nil for a lease
// that is not degraded).
func (s *Lease) DegradedCause() error {
	if s.cause == nil {
		return nil
	}
	return s.cause
}

// Stored reports whether the lease is kept in the table (acquired with a LeaseTTL).
func (s *Lease) Stored() bool { return s.stored }

// ExpiresAt returns when a stored lease expires (the zero time for one in memory).
func (s *Lease) ExpiresAt() time.Time { return s.expiresAt }

// Statuses returns the status of every limit after the lease's last write in this process
// (Available is what remains); for a lease returned again for a repeated request id, the
// status read when it was returned. A degraded lease, and one loaded with Limiter.Lease before
// any write, have none.
func (s *Lease) Statuses() []LimitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LimitStatus(nil), s.statuses...)
}

// Consumed returns the whole tokens the lease holds per limit of the entity (initial amounts
// plus adjustments); none once it is rolled back.
func (s *Lease) Consumed() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	if len(s.levels) > 0 && s.state != leaseRolledBack {
		for k, v := range s.levels[0].amounts {
			out[k] = v / millis
		}
	}
	return out
}

func (s *Lease) closedErr() error {
	switch s.state {
	case leaseCommitted:
		return ErrLeaseCommitted
	case leaseRolledBack:
		return ErrLeaseRolledBack
	}
	if s.stored && !s.l.now().Before(s.expiresAt) {
		return fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(s.id))
	}
	return nil
}

// Adjust changes the lease's consumption by amounts (whole tokens by limit name, negative to
// give back) at every level the lease charged. It is never refused for lack of tokens: buckets
// may go negative and recover with time. An adjustment may not give back more than the lease
// holds (*ValidationError); amounts of zero change nothing, and an adjustment of only zeros
// writes nothing (on an in-item lease resumed from its id, whose amounts are the id's guess
// until a write confirms them, it reads what the lease holds: one GetItem). One request: an UpdateItem, or a transaction with cascade or a lease item.
// A resend of the write (by the SDK after a lost response) applies once; to retry a failed
// Adjust call itself, use AdjustOnce.
func (s *Lease) Adjust(ctx context.Context, amounts map[string]int64) error {
	return s.AdjustOnce(ctx, "", amounts)
}

// AdjustOnce is Adjust applied at most once per key: a call with a key already applied to the
// lease (by any process, for a stored lease) changes nothing and returns nil, so a call whose
// outcome is unknown (an *UnavailableError, a lost answer) can be retried with the same key.
// Keys are 1 to MaxIdempotencyKeyLength bytes; "" means no key (Adjust). A stored lease keeps
// its keys in its item, at most MaxLeaseKeys of them.
func (s *Lease) AdjustOnce(ctx context.Context, key string, amounts map[string]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adjust(ctx, key, amounts)
}

// adjust is AdjustOnce with s.mu held. An in-item lease's write is conditioned on the exact
// amounts this process knows; when another process changed them, it is tried again from what
// the item holds (a few times).
func (s *Lease) adjust(ctx context.Context, key string, amounts map[string]int64) error {
	var err error
	for range rollbackAttempts {
		var stale bool
		if stale, err = s.adjustTry(ctx, key, amounts); !stale {
			return err
		}
	}
	return err
}

// adjustTry is one try of adjust; stale reports an in-item lease whose amounts were refreshed.
func (s *Lease) adjustTry(ctx context.Context, key string, amounts map[string]int64) (stale bool, _ error) {
	if err := s.closedErr(); err != nil {
		return false, err
	}
	if len(key) > MaxIdempotencyKeyLength {
		return false, invalid("idempotency_key", "at most %d bytes", MaxIdempotencyKeyLength)
	}
	nonzero := false
	for _, n := range amounts {
		nonzero = nonzero || n != 0
	}
	if !s.degraded && !nonzero && s.guessed {
		// Nothing to write, but what the lease holds is asked for (the API answers it): the
		// amounts of a lease resumed from its id are a guess, so read them (one read).
		return false, s.readEntry(ctx)
	}
	if s.degraded || !nonzero || (key != "" && s.keys[key]) {
		return false, nil
	}
	if len(amounts) > MaxLimits {
		return false, invalid("adjust", "at most %d limits, got %d", MaxLimits, len(amounts))
	}
	check := func() error {
		for name, n := range amounts {
			if _, ok := findLimit(s.levels[0].limits, name); !ok {
				return invalid("adjust."+name, "the lease has no limit %q", name)
			}
			if n < -MaxTokens || n > MaxTokens {
				return invalid("adjust."+name, "must be within ±%d tokens, got %d", int64(MaxTokens), n)
			}
			// |held| ≤ MaxLeaseTokens·1000 and |n·1000| ≤ MaxTokens·1000: the sum cannot wrap.
			switch held := s.levels[0].amounts[name]; {
			case held+n*millis < 0:
				return invalid("adjust."+name, "gives back %d tokens but the lease holds %d", -n, held/millis)
			case held+n*millis > MaxLeaseTokens*millis:
				return invalid("adjust."+name, "adds %d tokens to the %d the lease holds, more than a lease may hold (%d)", n, held/millis, int64(MaxLeaseTokens))
			}
		}
		return nil
	}
	if err := check(); err != nil {
		if !s.guessed {
			return false, err
		}
		// The amounts are those the id was made with: read what the lease holds (one read, only
		// when they would refuse the adjustment), and decide from that.
		if rerr := s.readEntry(ctx); rerr != nil {
			return false, rerr
		}
		if err := check(); err != nil {
			return false, err
		}
	}
	if s.stored && key != "" && len(s.keys) >= MaxLeaseKeys {
		return false, invalid("idempotency_key", "a lease keeps at most %d keys", MaxLeaseKeys)
	}
	delta := make([]level, len(s.levels))
	deltas := make([]map[string]int64, len(s.levels))
	for i, lv := range s.levels {
		d := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}}
		for name, n := range amounts {
			if _, ok := findLimit(lv.limits, name); ok && n != 0 {
				d.amounts[name] = n * millis
			}
		}
		delta[i], deltas[i] = d, d.amounts
	}
	extras, inline := s.writes(storage.LeaseUpdate{Deltas: deltas, Key: key})
	var pending *pendingWrite
	if key != "" && key == s.pendingKey {
		pending = s.pending
	}
	st, err := s.l.charge(ctx, chargeRequest{resource: s.resource, levels: delta, pending: &pending, extras: extras, inline: inline})
	switch {
	case key != "" && pending != nil:
		s.pending, s.pendingKey, s.pendingAmounts = pending, key, amounts
	case key != "" && key == s.pendingKey:
		s.pending, s.pendingKey, s.pendingAmounts = nil, "", nil
	}
	if err != nil {
		if it := s.appliedKey(err, key); it != nil {
			s.refresh(it)
			return false, nil // applied before, by this or another process
		}
		if lerr := s.leaseConflict(err); lerr != nil {
			var ve *ValidationError
			return s.inline && errors.As(lerr, &ve) && s.state == leaseOpen, lerr
		}
		return false, fmt.Errorf("adjust lease %s: %w", storage.LeaseRef(s.id), err)
	}
	if key != "" {
		if s.keys == nil {
			s.keys = map[string]bool{}
		}
		s.keys[key] = true
	}
	for i := range s.levels {
		for name, x := range delta[i].amounts {
			s.levels[i].amounts[name] += x
		}
	}
	s.statuses, s.guessed = st, false // a write conditioned on the amounts confirmed them
	return false, nil
}

// MaxLeaseKeys is how many idempotency keys a stored lease keeps: AdjustOnce with a new key on a
// lease that has them all is a *ValidationError.
const MaxLeaseKeys = 64

// appliedKey returns the stored lease when err is a failed condition on it because key was
// applied already.
func (s *Lease) appliedKey(err error, key string) *storage.LeaseItem {
	it, found, _, derr := leaseItemOf(err)
	if key == "" || !found || derr != nil {
		return nil // an unreadable item is not proof of anything; leaseConflict reports it
	}
	if s.inline {
		key = storage.InlineKeyHash(key)
	}
	if !it.Keys[key] {
		return nil
	}
	return it
}

// leaseItemOf returns the lease a failed condition on it returned: ok is false when err is
// not such a failure, found false when the lease did not exist.
func leaseItemOf(err error) (it *storage.LeaseItem, found, ok bool, derr error) {
	var xe *storage.ExtraConditionError
	var le *storage.LeaseEntryError
	switch {
	case errors.As(err, &xe):
		return xe.Lease, xe.Lease != nil, true, nil
	case errors.As(err, &le):
		e, found := le.Entry()
		if !found {
			return nil, false, true, nil
		}
		levels := []storage.LeaseLevel{{Amounts: e.Amounts}}
		if e.Parent != nil {
			levels = append(levels, storage.LeaseLevel{Amounts: e.Parent})
		}
		return &storage.LeaseItem{State: e.State, ExpiresAt: e.ExpiresAt, Keys: e.Keys, Levels: levels}, true, true, nil
	}
	return nil, false, false, nil
}

// writes returns how a change u of a stored lease is written: the transaction item of a lease
// item, or the change of an in-item lease (on the condition that it holds exactly what this
// process knows; a failure returns what it holds). An in-memory lease writes neither.
func (s *Lease) writes(u storage.LeaseUpdate) (func(int64) ([]storage.Extra, error), func(int64, *storage.Bucket) *storage.LeaseOp) {
	switch {
	case !s.stored:
		return nil, nil
	case s.inline:
		op := &storage.LeaseOp{Key: s.key, Secret: s.secret, To: u.To, Expect: map[string]int64{}}
		if u.Key != "" {
			op.KeyHash = storage.InlineKeyHash(u.Key)
		}
		op.Expect, op.Amounts = s.entryChange(0, u.Deltas)
		if len(s.levels) > 1 {
			op.ParentExpect, op.ParentAmounts = s.entryChange(1, u.Deltas)
		}
		return nil, func(int64, *storage.Bucket) *storage.LeaseOp { return op }
	}
	return func(now int64) ([]storage.Extra, error) {
		up, err := s.l.table.UpdateLease(s.id, u, now)
		return []storage.Extra{up}, err
	}, nil
}

// entryChange returns what an in-item lease's entry must hold of level i (every limit of it),
// and the amounts deltas change there (nil when none).
func (s *Lease) entryChange(i int, deltas []map[string]int64) (expect, amounts map[string]int64) {
	expect = map[string]int64{}
	for _, lim := range s.levels[i].limits {
		held := s.levels[i].amounts[lim.Name]
		expect[lim.Name] = held
		if len(deltas) > i && deltas[i][lim.Name] != 0 {
			if amounts == nil {
				amounts = map[string]int64{}
			}
			amounts[lim.Name] = held + deltas[i][lim.Name]
		}
	}
	return expect, amounts
}

// readEntry reads an in-item lease from its bucket item (strongly consistent) and takes its
// state and amounts.
func (s *Lease) readEntry(ctx context.Context) error {
	b, err := s.l.table.GetBucket(ctx, s.entityID, s.resource)
	if err != nil {
		return &UnavailableError{Op: "get lease", Err: err}
	}
	var ve *ValidationError
	if err := s.leaseConflict(&storage.LeaseEntryError{Key: s.key, Secret: s.secret, Current: b}); err != nil && !errors.As(err, &ve) {
		return err // committed, rolled back, gone or expired
	}
	return s.closedErr()
}

// refresh takes the amounts and keys of the stored lease it.
func (s *Lease) refresh(it *storage.LeaseItem) {
	s.guessed = false
	for i := range s.levels {
		if i < len(it.Levels) {
			s.levels[i].amounts = it.Levels[i].Amounts
		}
	}
	s.keys = it.Keys
}

// leaseConflict explains a failed condition on the stored lease: it was committed, rolled
// back, expired, or holds other amounts than this process knew (then the amounts are
// refreshed). It returns nil when err is something else.
func (s *Lease) leaseConflict(err error) error {
	it, found, ok, err := leaseItemOf(err)
	if !ok {
		return nil
	}
	if !found && err == nil {
		return fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(s.id))
	}
	switch {
	case err != nil:
		return fmt.Errorf("lease %s: %w", storage.LeaseRef(s.id), err)
	case it.State == storage.LeaseCommitted:
		s.state = leaseCommitted
		return ErrLeaseCommitted
	case it.State == storage.LeaseRolledBack:
		s.state = leaseRolledBack
		return ErrLeaseRolledBack
	case it.ExpiresAt <= s.l.nowMs():
		return fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(s.id))
	}
	s.refresh(it)
	return invalid("adjust", "the lease's amounts changed concurrently; it now holds %v millitokens", it.Levels[0].Amounts)
}

// Commit ends the lease and keeps its consumption. An in-memory lease writes nothing (the
// consumption was written at acquire); a stored one records its state in one UpdateItem. It is
// idempotent and returns ErrLeaseRolledBack after Rollback.
func (s *Lease) Commit(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commit(ctx)
}

// commit is Commit with s.mu held.
func (s *Lease) commit(ctx context.Context) error {
	switch s.state {
	case leaseRolledBack:
		return ErrLeaseRolledBack
	case leaseCommitted:
		return nil
	}
	if s.inline {
		return s.commitInline(ctx)
	}
	if s.stored && !s.degraded {
		it, err := s.l.table.CommitLease(ctx, s.id, s.l.nowMs())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(s.id))
		case errors.Is(err, storage.ErrLeaseState) && it.State == storage.LeaseRolledBack:
			s.state = leaseRolledBack
			return ErrLeaseRolledBack
		case errors.Is(err, storage.ErrLeaseState):
			return fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(s.id))
		case err != nil:
			return &UnavailableError{Op: "commit lease", Err: err}
		}
	}
	s.state = leaseCommitted
	return nil
}

// commitInline commits an in-item lease in one UpdateItem of its bucket: idempotent, whatever
// process committed it.
func (s *Lease) commitInline(ctx context.Context) error {
	none := []level{{entityID: s.levels[0].entityID, limits: s.levels[0].limits, amounts: map[string]int64{}}}
	op := &storage.LeaseOp{Key: s.key, Secret: s.secret, To: storage.LeaseCommitted}
	_, err := s.l.charge(ctx, chargeRequest{resource: s.resource, levels: none, inline: func(int64, *storage.Bucket) *storage.LeaseOp { return op }})
	if lerr := s.leaseConflict(err); lerr != nil {
		if errors.Is(lerr, ErrLeaseCommitted) {
			return nil // committed before, by this or another process
		}
		return lerr
	}
	if err != nil {
		return &UnavailableError{Op: "commit lease", Err: err}
	}
	s.state = leaseCommitted
	return nil
}

// Settle makes the lease keep final — whole tokens by limit name of the entity; limits not
// named keep what the lease holds — at every level it charged, and commits it, in one write
// (an UpdateItem, or a transaction with cascade or a lease item; a plain Commit when nothing
// changes): the LLM flow of acquire with an estimate, then settle with the real count. Like
// Adjust it is never refused for lack of tokens. It is idempotent: on a lease already
// committed keeping final it returns nil, on one committed keeping other amounts
// ErrLeaseCommitted, after a rollback ErrLeaseRolledBack. A stored lease settles exactly what
// its item holds, whichever process adjusted it.
func (s *Lease) Settle(ctx context.Context, final map[string]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(final) > MaxLimits {
		return invalid("consumed", "at most %d limits, got %d", MaxLimits, len(final))
	}
	if !s.degraded {
		for name, n := range final {
			if _, ok := findLimit(s.levels[0].limits, name); !ok {
				return invalid("consumed."+name, "the lease has no limit %q", name)
			}
			if n < 0 || n > MaxTokens {
				return invalid("consumed."+name, "must be 0 to %d tokens, got %d", int64(MaxTokens), n)
			}
		}
	}
	var err error
	for attempt := range rollbackAttempts {
		switch s.state {
		case leaseRolledBack:
			return ErrLeaseRolledBack
		case leaseCommitted:
			if s.keeps(final) {
				return nil
			}
			return ErrLeaseCommitted
		}
		if s.degraded {
			s.state = leaseCommitted
			return nil
		}
		if attempt > 0 {
			if serr := sleep(ctx, attempt+2); serr != nil {
				return serr
			}
		}
		delta := make([]level, len(s.levels))
		deltas := make([]map[string]int64, len(s.levels))
		held := make([]map[string]int64, len(s.levels))
		changed := false
		for i, lv := range s.levels {
			d := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}}
			held[i] = map[string]int64{}
			for _, lim := range lv.limits {
				held[i][lim.Name] = lv.amounts[lim.Name]
				if n, ok := final[lim.Name]; ok && n*millis != lv.amounts[lim.Name] {
					d.amounts[lim.Name] = n*millis - lv.amounts[lim.Name]
					changed = true
				}
			}
			delta[i], deltas[i] = d, d.amounts
		}
		if !changed && !s.inline {
			return s.commit(ctx)
		}
		// An in-item lease commits under the condition that it holds what this process knows
		// (final), like a change: a commit alone would keep another process's adjustment.
		extras, inline := s.writes(storage.LeaseUpdate{Deltas: deltas, Expect: held, To: storage.LeaseCommitted})
		var st []LimitStatus
		if st, err = s.l.charge(ctx, chargeRequest{resource: s.resource, levels: delta, extras: extras, inline: inline}); err == nil {
			for i := range s.levels {
				for name, x := range delta[i].amounts {
					s.levels[i].amounts[name] += x
				}
			}
			s.statuses, s.state = st, leaseCommitted
			return nil
		}
		if it, found, _, derr := leaseItemOf(err); found && derr == nil {
			s.refresh(it) // what the item holds decides the next try
		}
		switch lerr := s.leaseConflict(err); {
		case errors.Is(lerr, ErrLeaseRolledBack), errors.Is(lerr, ErrLeaseCommitted):
			continue // decided at the top of the loop, with the item's amounts
		case errors.Is(lerr, ErrLeaseNotFound):
			return lerr
		case lerr != nil:
			err = lerr // amounts refreshed: try again with them
		default:
			return fmt.Errorf("settle lease %s: %w", storage.LeaseRef(s.id), err)
		}
	}
	return fmt.Errorf("settle lease %s: %w", storage.LeaseRef(s.id), err)
}

// keeps reports whether the lease holds final (whole tokens, limits named) at its first level.
func (s *Lease) keeps(final map[string]int64) bool {
	if len(s.levels) == 0 {
		return len(final) == 0
	}
	for name, n := range final {
		if s.levels[0].amounts[name] != n*millis {
			return false
		}
	}
	return true
}

// Rollback puts back everything the lease took, initial amounts and adjustments, at every
// level, and ends the lease. It is idempotent (a second call does nothing) and returns
// ErrLeaseCommitted after Commit. The refund is one idempotent transaction, retried on failure;
// if it still cannot be written the error is returned and the lease stays open, so Rollback
// can be called again.
func (s *Lease) Rollback(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case leaseRolledBack:
		return nil
	case leaseCommitted:
		return ErrLeaseCommitted
	}
	if s.degraded {
		s.state = leaseRolledBack
		return nil
	}
	if s.pendingKey != "" && !s.stored {
		// An adjustment whose outcome is unknown is settled first (resent under its write id),
		// so that the refund is exactly what the lease holds. A stored lease needs not: the
		// rollback's condition reads what its item holds.
		if err := s.adjust(ctx, s.pendingKey, s.pendingAmounts); err != nil {
			return fmt.Errorf("rollback lease %s: settle the adjustment whose outcome is unknown: %w", storage.LeaseRef(s.id), err)
		}
	}
	var err error
	for attempt := range rollbackAttempts {
		if attempt > 0 {
			if serr := sleep(ctx, attempt+2); serr != nil {
				break
			}
		}
		refund := make([]level, len(s.levels))
		held := make([]map[string]int64, len(s.levels))
		for i, lv := range s.levels {
			d := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}, acquires: -1}
			held[i] = map[string]int64{}
			// Every limit, those held at 0 too: the condition is that the stored amounts are
			// exactly these, so an adjustment by another process is never left unrefunded.
			for _, lim := range lv.limits {
				x := lv.amounts[lim.Name]
				held[i][lim.Name] = x
				if x != 0 {
					d.amounts[lim.Name] = -x
				}
			}
			refund[i] = d
		}
		extras, inline := s.writes(storage.LeaseUpdate{Expect: held, To: storage.LeaseRolledBack})
		if s.pendingKey != "" {
			s.pending, s.pendingKey, s.pendingAmounts = nil, "", nil // the item's amounts decide
		}
		if _, err = s.l.charge(ctx, chargeRequest{resource: s.resource, levels: refund, pending: &s.pending, extras: extras, inline: inline}); err == nil {
			s.state = leaseRolledBack
			return nil
		}
		switch lerr := s.leaseConflict(err); {
		case errors.Is(lerr, ErrLeaseRolledBack):
			return nil // rolled back by another process
		case errors.Is(lerr, ErrLeaseCommitted), errors.Is(lerr, ErrLeaseNotFound):
			return lerr
		case lerr != nil:
			err = lerr // amounts refreshed: try again with them
		}
	}
	return fmt.Errorf("rollback lease %s: %w", storage.LeaseRef(s.id), err)
}

// rollbackAttempts is how many times Rollback tries its transaction before it returns the
// error (the SDK retries each try on its own as well).
const rollbackAttempts = 3

// Lease loads a stored lease by id, in any process. It returns ErrLeaseNotFound for an id that
// is malformed, unknown or expired.
func (l *Limiter) Lease(ctx context.Context, id string) (*Lease, error) {
	if storage.IsInlineLeaseID(id) {
		return l.inlineLease(id)
	}
	it, err := l.table.GetLease(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(id))
	}
	if err != nil {
		return nil, &UnavailableError{Op: "get lease", Err: err}
	}
	if it.ExpiresAt <= l.nowMs() {
		return nil, fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(id))
	}
	s := &Lease{l: l, id: id, entityID: it.EntityID, resource: it.Resource, stored: true,
		expiresAt: time.UnixMilli(it.ExpiresAt).UTC()}
	switch it.State {
	case storage.LeaseCommitted:
		s.state = leaseCommitted
	case storage.LeaseRolledBack:
		s.state = leaseRolledBack
	}
	for _, lv := range it.Levels {
		s.levels = append(s.levels, level{entityID: lv.EntityID, limits: fromConfigs(lv.Limits), amounts: lv.Amounts})
	}
	s.keys = it.Keys
	if len(s.levels) == 0 {
		return nil, fmt.Errorf("%w: %s has no levels", ErrLeaseNotFound, storage.LeaseRef(id))
	}
	return s, nil
}

// inlineLease resumes a lease kept in its bucket item from its id alone: no read. What the id
// says it holds is only a guess: every write is conditioned on what the item holds, and a
// failed condition returns it. A malformed id is a *ValidationError.
func (l *Limiter) inlineLease(id string) (*Lease, error) {
	p, err := storage.ParseInlineLeaseID(id)
	if err != nil {
		return nil, invalid("lease_id", "%v", err)
	}
	levels := []level{{entityID: p.EntityID, limits: fromConfigs(p.Limits), amounts: p.Amounts}}
	if p.ParentID != "" {
		levels = append(levels, level{entityID: p.ParentID, limits: fromConfigs(p.ParentLimits), amounts: p.ParentAmounts})
	}
	for _, lv := range levels {
		if err := validateLimits(lv.limits); err != nil {
			return nil, invalid("lease_id", "its limits: %v", err)
		}
		for _, x := range lv.amounts {
			if x > MaxLeaseTokens*millis {
				return nil, invalid("lease_id", "holds more than a lease may")
			}
		}
	}
	if p.ExpiresAt <= l.nowMs() {
		return nil, fmt.Errorf("%w: %s", ErrLeaseNotFound, storage.LeaseRef(id))
	}
	return &Lease{l: l, id: id, entityID: p.EntityID, resource: p.Resource, stored: true, inline: true, key: p.Key, secret: p.Secret, guessed: true,
		expiresAt: time.UnixMilli(p.ExpiresAt).UTC(), levels: levels}, nil
}

// Do acquires, runs fn with the lease, and commits when fn returns nil. When fn returns an
// error or panics, it rolls the lease back first; the panic is then raised again, and the
// error is returned joined with any rollback error.
func (l *Limiter) Do(ctx context.Context, req AcquireRequest, fn func(context.Context, *Lease) error) (err error) {
	lease, err := l.Acquire(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			if rerr := lease.Rollback(ctx); rerr != nil {
				l.log.ErrorContext(ctx, "rollback after panic failed", "lease", storage.LeaseRef(lease.ID()), "error", rerr.Error())
			}
			panic(p)
		}
	}()
	if ferr := fn(ctx, lease); ferr != nil {
		return errors.Join(ferr, lease.Rollback(ctx))
	}
	return lease.Commit(ctx)
}
