package tokenbucket

import (
	"testing"
)

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
	t0     = int64(1_795_000_000_000) // a Unix ms instant in 2026
)

// tokens converts whole tokens to millitokens.
func tokens(n int64) int64 { return n * 1000 }

func TestLevelRefill(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		take    int64 // millitokens taken at t0 from a full bucket
		elapsed int64 // ms after t0
		want    int64 // level then, millitokens
	}{
		{"per minute, just taken", Params{tokens(100), tokens(100), minute}, tokens(100), 0, 0},
		{"per minute, 1 s later", Params{tokens(100), tokens(100), minute}, tokens(100), second, 1666},
		{"per minute, 30 s later", Params{tokens(100), tokens(100), minute}, tokens(100), 30 * second, tokens(50)},
		{"capped at capacity", Params{tokens(100), tokens(100), minute}, tokens(10), hour, tokens(100)},
		{"1 ms period", Params{tokens(5), 1, 1}, tokens(5), 1, 1},
		{"1 ms period, 4999 ms", Params{tokens(5), 1, 1}, tokens(5), 4999, 4999},
		{"1 day period, 1 ms later", Params{tokens(1_000_000), tokens(1_000_000), day}, tokens(1_000_000), 1, 11},
		{"1 day period, half a day", Params{tokens(1_000_000), tokens(1_000_000), day}, tokens(1_000_000), day / 2, tokens(500_000)},
		{"burst above rate", Params{tokens(150), tokens(100), minute}, tokens(150), 30 * second, tokens(50)},
		{"huge capacity", Params{tokens(1_000_000_000_000), tokens(1_000_000_000_000), day}, tokens(1_000_000_000_000), day - 1, 999_999_988_425_925},
		{"long idle (10 years)", Params{tokens(3), 1, day}, tokens(3), 3650 * day, tokens(3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.p.ChargeFull(t0, tc.take)
			if got := tc.p.Level(e, t0+tc.elapsed); got != tc.want {
				t.Errorf("Level = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNoDriftOverManyCalls(t *testing.T) {
	// 7 tokens per 3 s (30.33 mT per 13 ms); try to take 31 mT every 13 ms for a simulated day,
	// so the bucket hovers near empty and never fills. The level must equal the closed form at
	// every step: refilled(total elapsed) − taken, never off by rounding.
	p := Params{Capacity: tokens(7), Amount: tokens(7), Period: 3 * second}
	e := p.ChargeFull(t0, p.Capacity) // empty at t0
	var taken int64
	for now := t0; now < t0+day; now += 13 {
		var ok bool
		e, ok = p.Take(e, now, 31)
		if !ok {
			continue
		}
		taken += 31
		// closed form while never full: floor((now−t0)·A/P) − taken
		want := min((now-t0)*p.Amount/p.Period-taken, p.Capacity)
		if got := p.Level(e, now); got != want {
			t.Fatalf("at +%d ms: level %d, want %d", now-t0, got, want)
		}
	}
	// Over a day 7 tokens per 3 s refill 201,600 tokens; nearly all of it must have been taken.
	if want := (day - 13) * p.Amount / p.Period; taken > want || taken < want-31 {
		t.Fatalf("taken %d mT in a day, want within 31 of %d", taken, want)
	}
}

func TestNegativeBucketRecovers(t *testing.T) {
	p := Params{Capacity: tokens(10), Amount: tokens(10), Period: minute}
	e := p.ChargeFull(t0, tokens(10))
	e = p.Charge(e, t0, tokens(25)) // reconciliation: actual usage was 35
	if got := p.Level(e, t0); got != tokens(-25) {
		t.Fatalf("level %d, want -25000", got)
	}
	if _, ok := p.Take(e, t0+minute, 1); ok {
		t.Fatal("took from a bucket still negative")
	}
	// −25 + 10/min needs 2.5 min to reach 0 and 2.6 min to reach 1 token.
	ms, ok := p.Wait(e, t0, tokens(1))
	if !ok || ms != 156*second {
		t.Fatalf("Wait = %d %v, want 156000", ms, ok)
	}
	if got := p.Level(e, t0+156*second); got != tokens(1) {
		t.Fatalf("level after wait %d", got)
	}
	if got := p.Level(e, t0+156*second-1); got >= tokens(1) {
		t.Fatalf("level 1 ms before the wait ends is already %d", got)
	}
}

func TestRoundingNeverCreatesTokens(t *testing.T) {
	// 1 token per 3 ms: each ms refills 333.33 mT. Over any split of time into steps, the level
	// is floor of the exact refill, never more.
	p := Params{Capacity: tokens(1000), Amount: tokens(1), Period: 3}
	e := p.ChargeFull(t0, p.Capacity)
	for step := int64(1); step <= 7; step++ {
		for now := t0; now <= t0+300; now += step {
			exact := (now - t0) * p.Amount // in mT·ms/period units, divided by P below
			if got := p.Level(e, now); got*p.Period > exact {
				t.Fatalf("step %d at +%d: level %d exceeds exact %d/%d", step, now-t0, got, exact, p.Period)
			}
		}
	}
	// Rebase rounds down: 1 mT per 3 ms → per 7 ms, level never grows.
	q := Params{Capacity: tokens(1000), Amount: 1, Period: 7}
	for now := t0; now < t0+50; now++ {
		if got, was := q.Level(q.Rebase(p, e, now), now), p.Level(e, now); got > was {
			t.Fatalf("rebase at +%d made %d from %d", now-t0, got, was)
		}
	}
}

func TestRefundCappedAtCapacity(t *testing.T) {
	p := Params{Capacity: tokens(10), Amount: tokens(10), Period: minute}
	e := p.ChargeFull(t0, tokens(4))
	e = p.Charge(e, t0, tokens(-400)) // refund far more than taken
	if got := p.Level(e, t0); got != tokens(10) {
		t.Fatalf("level %d, want capacity", got)
	}
	e = p.Charge(e, t0, tokens(3)) // a charge after an over-refund starts from capacity
	if got := p.Level(e, t0); got != tokens(7) {
		t.Fatalf("level %d, want 7000", got)
	}
}

func TestWaitExceedsCapacity(t *testing.T) {
	p := Params{Capacity: tokens(10), Amount: tokens(10), Period: minute}
	if _, ok := p.Wait(p.Floor(t0), t0, tokens(11)); ok {
		t.Fatal("Wait for more than capacity reported ok")
	}
	if ms, ok := p.Wait(p.Floor(t0), t0, tokens(10)); !ok || ms != 0 {
		t.Fatalf("full bucket wait %d %v", ms, ok)
	}
}

func TestFullAndCeiling(t *testing.T) {
	p := Params{Capacity: tokens(10), Amount: tokens(10), Period: minute}
	if !p.Full(p.Floor(t0), t0) || p.Full(p.Floor(t0).Add(I128(1)), t0) {
		t.Fatal("Full boundary wrong")
	}
	e := p.ChargeFull(t0, tokens(6)) // level 4
	if p.Ceiling(t0, tokens(4)).Less(e) {
		t.Fatal("ceiling for 4 excludes a bucket holding 4")
	}
	if !p.Ceiling(t0, tokens(4)+1).Less(e) {
		t.Fatal("ceiling for 4.001 includes a bucket holding 4")
	}
}

func BenchmarkDecisionTwoLimits(b *testing.B) {
	rpm := Params{Capacity: tokens(100), Amount: tokens(100), Period: minute}
	tpm := Params{Capacity: tokens(15_000), Amount: tokens(10_000), Period: minute}
	e1, e2 := rpm.ChargeFull(t0, tokens(50)), tpm.ChargeFull(t0, tokens(5000))
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now++
		n1, ok1 := rpm.Take(e1, now, tokens(1))
		n2, ok2 := tpm.Take(e2, now, tokens(1))
		if ok1 && ok2 {
			e1, e2 = n1, n2
		} else {
			e1, e2 = rpm.ChargeFull(now, 0), tpm.ChargeFull(now, 0)
		}
	}
}
