package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

type leaseState int

const (
	leaseOpen leaseState = iota
	leaseCommitted
	leaseRolledBack
)

// A Lease is what an Acquire took. The consumption is written when the lease is made; Adjust
// changes it (LLM token reconciliation), Commit keeps it, Rollback puts all of it back.
// A Lease is safe for concurrent use.
type Lease struct {
	l        *Limiter
	id       string
	entityID string
	resource string
	degraded bool

	mu       sync.Mutex
	levels   []level // amounts: millitokens taken so far, by level and limit
	statuses []LimitStatus
	state    leaseState
	adjusts  int          // adjustments written, to name the next one
	refund   *idempotency // the rollback in progress, kept across failed calls
}

// ID returns the lease's id: 128 random bits in hex.
func (s *Lease) ID() string { return s.id }

// EntityID returns the entity the lease charged.
func (s *Lease) EntityID() string { return s.entityID }

// Resource returns the resource the lease charged.
func (s *Lease) Resource() string { return s.resource }

// Degraded reports whether the lease was granted without DynamoDB (fail open): it took nothing,
// and its Adjust, Commit and Rollback write nothing.
func (s *Lease) Degraded() bool { return s.degraded }

// Statuses returns the status of every limit after the last write of the lease (Available is
// what remains). A degraded lease has none.
func (s *Lease) Statuses() []LimitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LimitStatus(nil), s.statuses...)
}

// Consumed returns the whole tokens the lease holds per limit of the entity (initial amounts
// plus adjustments).
func (s *Lease) Consumed() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	if len(s.levels) > 0 {
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
	return nil
}

// Adjust changes the lease's consumption by amounts (whole tokens by limit name, negative to
// give back) at every level the lease charged. It is never refused for lack of tokens: buckets
// may go negative and recover with time. An adjustment may not give back more than the lease
// holds (*ValidationError). One request: an UpdateItem, or a transaction with cascade or when
// tokens are given back (idempotent, so a retry never refunds twice).
func (s *Lease) Adjust(ctx context.Context, amounts map[string]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closedErr(); err != nil {
		return err
	}
	if s.degraded || len(amounts) == 0 {
		return nil
	}
	refund := false
	for name, n := range amounts {
		if _, ok := findLimit(s.levels[0].limits, name); !ok {
			return invalid("adjust."+name, "the lease has no limit %q", name)
		}
		if n < -MaxTokens || n > MaxTokens {
			return invalid("adjust."+name, "must be within ±%d tokens, got %d", int64(MaxTokens), n)
		}
		if s.levels[0].amounts[name]+n*millis < 0 {
			return invalid("adjust."+name, "gives back %d tokens but the lease holds %d", -n, s.levels[0].amounts[name]/millis)
		}
		refund = refund || n < 0
	}
	delta := make([]level, len(s.levels))
	for i, lv := range s.levels {
		d := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}}
		for name, n := range amounts {
			if _, ok := findLimit(lv.limits, name); ok && n != 0 {
				d.amounts[name] = n * millis
			}
		}
		delta[i] = d
	}
	var idem *idempotency
	if refund {
		idem = &idempotency{base: fmt.Sprintf("%s-a%d", s.id[:24], s.adjusts)}
	}
	st, err := s.l.charge(ctx, s.resource, delta, false, idem)
	if err != nil {
		return fmt.Errorf("adjust lease %s: %w", s.id, err)
	}
	s.adjusts++
	for i := range s.levels {
		for name, x := range delta[i].amounts {
			s.levels[i].amounts[name] += x
		}
	}
	s.statuses = st
	return nil
}

// Commit ends the lease and keeps its consumption. It writes nothing (the consumption was
// written at acquire), is idempotent, and returns ErrLeaseRolledBack after Rollback.
func (s *Lease) Commit(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == leaseRolledBack {
		return ErrLeaseRolledBack
	}
	s.state = leaseCommitted
	return nil
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
	refund := make([]level, len(s.levels))
	for i, lv := range s.levels {
		d := level{entityID: lv.entityID, limits: lv.limits, amounts: map[string]int64{}, acquires: -1}
		for name, x := range lv.amounts {
			if x != 0 {
				d.amounts[name] = -x
			}
		}
		refund[i] = d
	}
	if s.refund == nil {
		s.refund = &idempotency{base: s.id[:24] + "-r"}
	}
	var err error
	for attempt := range rollbackAttempts {
		if attempt > 0 {
			if serr := sleep(ctx, attempt+2); serr != nil {
				break
			}
		}
		if _, err = s.l.charge(ctx, s.resource, refund, false, s.refund); err == nil {
			s.state = leaseRolledBack
			for i := range s.levels {
				s.levels[i].amounts = map[string]int64{}
			}
			return nil
		}
	}
	return fmt.Errorf("rollback lease %s: %w", s.id, err)
}

// rollbackAttempts is how many times Rollback tries its transaction before it returns the
// error (the SDK retries each try on its own as well).
const rollbackAttempts = 3

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
				l.log.ErrorContext(ctx, "rollback after panic failed", "lease_id", lease.ID(), "error", rerr.Error())
			}
			panic(p)
		}
	}()
	if ferr := fn(ctx, lease); ferr != nil {
		return errors.Join(ferr, lease.Rollback(ctx))
	}
	return lease.Commit(ctx)
}
