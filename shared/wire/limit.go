package wire

import (
	"fmt"
	"time"
)

// Bounds of what a limit and a call may hold. They keep every bucket state within the 128-bit
// arithmetic of package tokenbucket (which the limiter uses) with room to spare.
const (
	MaxLimits       = 16                        // limits in one call or one stored set
	MaxTokens       = 1_000_000_000_000         // largest capacity, refill amount or amount in a call
	MaxRefillPeriod = 10 * 365 * 24 * time.Hour // longest refill period
	MinRefillPeriod = time.Millisecond          // shortest refill period; periods are whole ms
	MaxNameLength   = 64                        // longest limit name
	// MaxLeaseTokens is the most a lease may hold of one limit after its adjustments: 1,000 times
	// the largest single amount, and far from the 64-bit range of its millitokens, so no sum of
	// adjustments can wrap around. Running totals beyond it (a bucket's consumed counter, a
	// window's usage) are counted in 128 bits instead.
	MaxLeaseTokens = 1000 * MaxTokens
)

// A Limit is a token bucket: it holds at most Capacity tokens (the burst), starts full, and
// refills RefillAmount tokens every RefillPeriod, continuously and exactly (a third of the
// amount after a third of the period). Tokens are whole numbers in calls and millitokens
// inside, so refill never rounds in stored state.
//
// Names are 1 to 64 characters from A-Z a-z 0-9 _ -; they identify the limit within an
// entity+resource (for example "rpm" and "tpm").
type Limit struct {
	Name         string
	Capacity     int64
	RefillAmount int64
	RefillPeriod time.Duration
}

// NewLimit returns a limit of capacity tokens refilling refillAmount every refillPeriod.
func NewLimit(name string, capacity, refillAmount int64, refillPeriod time.Duration) Limit {
	return Limit{Name: name, Capacity: capacity, RefillAmount: refillAmount, RefillPeriod: refillPeriod}
}

// PerSecond returns a limit of rate tokens per second with a burst of rate.
func PerSecond(name string, rate int64) Limit { return NewLimit(name, rate, rate, time.Second) }

// PerMinute returns a limit of rate tokens per minute with a burst of rate.
func PerMinute(name string, rate int64) Limit { return NewLimit(name, rate, rate, time.Minute) }

// PerHour returns a limit of rate tokens per hour with a burst of rate.
func PerHour(name string, rate int64) Limit { return NewLimit(name, rate, rate, time.Hour) }

// PerDay returns a limit of rate tokens per day with a burst of rate.
func PerDay(name string, rate int64) Limit { return NewLimit(name, rate, rate, 24*time.Hour) }

// WithBurst returns l with capacity burst: up to burst tokens at once, refilled at l's rate.
func (l Limit) WithBurst(burst int64) Limit {
	l.Capacity = burst
	return l
}

// Validate reports whether l is well formed, as a *ValidationError.
func (l Limit) Validate() error {
	if err := validateName(l.Name); err != nil {
		return err
	}
	field := "limits." + l.Name
	switch {
	case l.Capacity <= 0 || l.Capacity > MaxTokens:
		return invalid(field+".capacity", "must be 1 to %d tokens, got %d", int64(MaxTokens), l.Capacity)
	case l.RefillAmount <= 0 || l.RefillAmount > MaxTokens:
		return invalid(field+".refill_amount", "must be 1 to %d tokens, got %d", int64(MaxTokens), l.RefillAmount)
	case l.RefillPeriod < MinRefillPeriod || l.RefillPeriod > MaxRefillPeriod:
		return invalid(field+".refill_period", "must be 1ms to %s, got %s", MaxRefillPeriod, l.RefillPeriod)
	case l.RefillPeriod%time.Millisecond != 0:
		return invalid(field+".refill_period", "must be a whole number of milliseconds, got %s", l.RefillPeriod)
	}
	return nil
}

func validateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return invalid("limits.name", "must be 1 to %d characters, got %q", MaxNameLength, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return invalid("limits.name", "%q: only A-Z a-z 0-9 _ - are allowed", name)
		}
	}
	return nil
}

// String describes the limit, as "rpm: 100 per 1m0s, burst 100".
func (l Limit) String() string {
	return fmt.Sprintf("%s: %d per %s, burst %d", l.Name, l.RefillAmount, l.RefillPeriod, l.Capacity)
}
