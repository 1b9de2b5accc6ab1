package client

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Lease is what an Acquire took, as the API reported it. Its methods settle it through the
// client; any other process can settle it too, by id (Client.Adjust, Commit, Rollback). A Lease
// is safe for concurrent use.
type Lease struct {
	c         *Client
	id        string
	entityID  string
	resource  string
	expiresAt time.Time
	degraded  bool

	mu       sync.Mutex
	consumed map[string]int64
	statuses []wire.LimitStatus
	ended    error // for a degraded lease: the error a later settlement returns
}

// ID returns the lease's id (128 random bits in hex).
func (l *Lease) ID() string { return l.id }

// EntityID returns the entity the lease charged.
func (l *Lease) EntityID() string { return l.entityID }

// Resource returns the resource the lease charged.
func (l *Lease) Resource() string { return l.resource }

// ExpiresAt returns when the lease can no longer be adjusted, committed or rolled back (the
// zero time for a degraded lease).
func (l *Lease) ExpiresAt() time.Time { return l.expiresAt }

// Degraded reports whether the lease was granted without the limiter (fail open, by the API or
// by this client when the API was unavailable): it took nothing, is not stored, and its Adjust,
// Commit and Rollback send nothing.
func (l *Lease) Degraded() bool { return l.degraded }

// Consumed returns the whole tokens the lease holds per limit, as of its last call here.
func (l *Lease) Consumed() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.consumed)
}

// Statuses returns the statuses of the lease's last acquire or adjust (Available is what
// remains).
func (l *Lease) Statuses() []wire.LimitStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wire.LimitStatus(nil), l.statuses...)
}

// Adjust changes the lease's consumption by amounts (negative to give back). See
// Client.Adjust.
func (l *Lease) Adjust(ctx context.Context, amounts map[string]int64) error {
	if l.degraded {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.ended
	}
	out, err := l.c.adjust(ctx, l.id, newID(), amounts)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.consumed, l.statuses = out.Consumed, toStatuses(out.Statuses)
	return nil
}

// Settle ends the lease keeping final, in one write. See Client.Settle.
func (l *Lease) Settle(ctx context.Context, final map[string]int64) error {
	if l.degraded {
		return l.endDegraded(wire.ErrLeaseCommitted, wire.ErrLeaseRolledBack)
	}
	if err := l.c.Settle(ctx, l.id, final); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.consumed == nil {
		l.consumed = map[string]int64{}
	}
	for name, n := range final {
		l.consumed[name] = n
	}
	return nil
}

// Commit ends the lease and keeps its consumption. See Client.Commit.
func (l *Lease) Commit(ctx context.Context) error {
	if l.degraded {
		return l.endDegraded(wire.ErrLeaseCommitted, wire.ErrLeaseRolledBack)
	}
	return l.c.Commit(ctx, l.id)
}

// Rollback ends the lease and puts back all it consumed. See Client.Rollback.
func (l *Lease) Rollback(ctx context.Context) error {
	if l.degraded {
		return l.endDegraded(wire.ErrLeaseRolledBack, wire.ErrLeaseCommitted)
	}
	if err := l.c.Rollback(ctx, l.id); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.consumed = map[string]int64{}
	return nil
}

// endDegraded settles a degraded lease locally as the library settles one: repeating the same
// end is a no-op, the other end after it fails.
func (l *Lease) endDegraded(self, other error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.ended {
	case nil:
		l.ended = self
		return nil
	case self:
		return nil
	}
	return other
}
