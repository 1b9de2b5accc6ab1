// Package jitter is the one wait between retries of a DynamoDB call in this module: "full
// jitter", a uniformly random wait between 0 and a cap that doubles with every attempt, so that
// writers contending for one item stop colliding in lockstep (the same law as the AWS SDK's
// retryer, at the millisecond scale a contended item needs rather than the SDK's seconds).
package jitter

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff waits, before retry attempt n (0-based), a uniformly random duration in
// [0, min(Base·2^n, Max)].
type Backoff struct {
	Base time.Duration // the cap of attempt 0; must be positive
	Max  time.Duration // the largest cap
}

// Cap returns the largest wait of attempt n: min(Base·2^n, Max), without overflow.
func (p Backoff) Cap(attempt int) time.Duration {
	c := p.Base
	for i := 0; i < attempt && c < p.Max; i++ {
		c *= 2
	}
	return min(c, p.Max)
}

// Delay returns the wait before attempt n, drawn with rnd (rand.Int64N's contract: a value in
// [0, n)); tests pass their own.
func (p Backoff) Delay(attempt int, rnd func(n int64) int64) time.Duration {
	return time.Duration(rnd(int64(p.Cap(attempt)) + 1))
}

// Wait sleeps Delay(attempt, rand.Int64N), or returns ctx's error if it ends first.
func (p Backoff) Wait(ctx context.Context, attempt int) error {
	t := time.NewTimer(p.Delay(attempt, rand.Int64N))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
