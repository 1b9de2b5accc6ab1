package jitter

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCap(t *testing.T) {
	p := Backoff{Base: time.Millisecond, Max: 64 * time.Millisecond}
	for attempt, want := range []time.Duration{1, 2, 4, 8, 16, 32, 64, 64} {
		if got := p.Cap(attempt); got != want*time.Millisecond {
			t.Errorf("Cap(%d) = %v, want %v", attempt, got, want*time.Millisecond)
		}
	}
	if got := p.Cap(1 << 20); got != 64*time.Millisecond {
		t.Errorf("Cap of a huge attempt = %v, want the max", got)
	}
}

func TestDelayIsFullJitter(t *testing.T) {
	p := Backoff{Base: 25 * time.Millisecond, Max: time.Second}
	var asked int64
	top := func(n int64) int64 { asked = n; return n - 1 }
	if got := p.Delay(2, top); got != 100*time.Millisecond || asked != int64(100*time.Millisecond)+1 {
		t.Errorf("Delay(2) at the top of the range = %v (n=%d), want 100ms", got, asked)
	}
	if got := p.Delay(9, func(int64) int64 { return 0 }); got != 0 {
		t.Errorf("Delay at the bottom of the range = %v, want 0", got)
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour-long cap: the draw is 0 (when the timer could win) once in 3.6e12.
	p := Backoff{Base: time.Hour, Max: time.Hour}
	if err := p.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
	if err := (Backoff{Base: time.Nanosecond, Max: time.Nanosecond}).Wait(context.Background(), 3); err != nil {
		t.Fatalf("Wait of at most 1 ns = %v", err)
	}
}
