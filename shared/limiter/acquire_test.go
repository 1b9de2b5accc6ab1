package limiter_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

var (
	rpm = limiter.PerMinute("rpm", 100)
	tpm = limiter.PerMinute("tpm", 10_000).WithBurst(15_000)
)

func TestAcquireConsumesAllLimits(t *testing.T) {
	e := newEnv(t)
	req := limiter.AcquireRequest{EntityID: "key-1", Resource: "gpt-4", Limits: []limiter.Limit{rpm, tpm},
		Consume: map[string]int64{"rpm": 1, "tpm": 500}}
	lease := mustAcquire(t, e.lim, req)
	if lease.Degraded() || len(lease.ID()) != 32 {
		t.Fatalf("lease %q degraded=%v", lease.ID(), lease.Degraded())
	}
	got := available(t, e, "key-1", "gpt-4", rpm, tpm)
	if got["rpm"] != 99 || got["tpm"] != 14_500 {
		t.Fatalf("available %v, want rpm 99, tpm 14500", got)
	}
	st := lease.Statuses()
	if len(st) != 2 || st[0].Available+st[1].Available != 99+14_500 {
		t.Fatalf("statuses %+v", st)
	}
	// Exact refill: 1 second refills 100/60 rpm (1.666 → 1 whole) and 10000/60 tpm (166.66).
	e.clock.Advance(time.Second)
	got = available(t, e, "key-1", "gpt-4", rpm, tpm)
	if got["rpm"] != 100 || got["tpm"] != 14_666 {
		t.Fatalf("after 1 s: %v, want rpm 100 (capped), tpm 14666", got)
	}
}

func TestAcquireAllOrNothing(t *testing.T) {
	e := newEnv(t)
	req := limiter.AcquireRequest{EntityID: "key-1", Resource: "gpt-4", Limits: []limiter.Limit{rpm, tpm},
		Consume: map[string]int64{"rpm": 1, "tpm": 10_000}}
	mustAcquire(t, e.lim, req)
	// tpm has 5000 left: asking 10000 again must fail and take nothing from rpm either.
	_, err := e.lim.Acquire(ctx(), req)
	var rle *limiter.RateLimitExceededError
	if !errors.As(err, &rle) {
		t.Fatalf("want RateLimitExceededError, got %v", err)
	}
	if got := available(t, e, "key-1", "gpt-4", rpm, tpm); got["rpm"] != 99 || got["tpm"] != 5000 {
		t.Fatalf("a refused acquire changed the buckets: %v", got)
	}
	if len(rle.Statuses) != 2 || len(rle.Violations()) != 1 || len(rle.Passed()) != 1 {
		t.Fatalf("statuses %+v", rle.Statuses)
	}
	p := rle.PrimaryViolation()
	// 5000 more tokens at 10000/min: 30 s.
	if p.Limit.Name != "tpm" || p.Available != 5000 || p.Requested != 10_000 || p.RetryAfter != 30*time.Second || rle.RetryAfter != 30*time.Second {
		t.Fatalf("primary violation %+v, retry %s", p, rle.RetryAfter)
	}
	if rle.RetryAfterHeader() != "30" {
		t.Fatalf("Retry-After %q", rle.RetryAfterHeader())
	}
	var body map[string]any
	b, _ := json.Marshal(rle)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if body["error"] != "rate_limit_exceeded" || body["retry_after_ms"] != float64(30_000) || body["retry_after_seconds"] != float64(30) {
		t.Fatalf("JSON %s", b)
	}
	limits := body["limits"].([]any)
	first := limits[0].(map[string]any)
	for _, k := range []string{"entity_id", "resource", "limit_name", "capacity", "available", "requested", "exceeded", "retry_after_seconds"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("status JSON lacks %q: %s", k, b)
		}
	}
	// After the wait the same acquire passes.
	e.clock.Advance(30 * time.Second)
	mustAcquire(t, e.lim, req)
}

func TestRetryAfterHeaderRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59500 * time.Millisecond, 60}} {
		if got := limiter.RetryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	many := make([]limiter.Limit, 17)
	for i := range many {
		many[i] = limiter.PerSecond("l"+string(rune('a'+i)), 1)
	}
	base := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{rpm}, Consume: map[string]int64{"rpm": 1}}
	cases := map[string]func(r *limiter.AcquireRequest){
		"entity with separator": func(r *limiter.AcquireRequest) { r.EntityID = "a#b" },
		"empty resource":        func(r *limiter.AcquireRequest) { r.Resource = "" },
		"reserved resource":     func(r *limiter.AcquireRequest) { r.Resource = "_default_" },
		"bad limit name":        func(r *limiter.AcquireRequest) { r.Limits = []limiter.Limit{limiter.PerSecond("a b", 1)} },
		"zero capacity":         func(r *limiter.AcquireRequest) { r.Limits = []limiter.Limit{limiter.PerSecond("rpm", 0)} },
		"sub-ms period": func(r *limiter.AcquireRequest) {
			r.Limits = []limiter.Limit{limiter.NewLimit("rpm", 1, 1, time.Microsecond)}
		},
		"17 limits":             func(r *limiter.AcquireRequest) { r.Limits = many },
		"duplicate limit":       func(r *limiter.AcquireRequest) { r.Limits = []limiter.Limit{rpm, rpm} },
		"negative consume":      func(r *limiter.AcquireRequest) { r.Consume = map[string]int64{"rpm": -1} },
		"consume unknown limit": func(r *limiter.AcquireRequest) { r.Consume = map[string]int64{"tpm": 1} },
		"consume over capacity": func(r *limiter.AcquireRequest) { r.Consume = map[string]int64{"rpm": 101} },
		"no consume":            func(r *limiter.AcquireRequest) { r.Consume = nil },
		"no limits":             func(r *limiter.AcquireRequest) { r.Limits = nil },
		"unknown failure mode":  func(r *limiter.AcquireRequest) { r.FailureMode = 9 },
		"huge capacity overflow": func(r *limiter.AcquireRequest) {
			r.Limits = []limiter.Limit{limiter.PerSecond("rpm", limiter.MaxTokens+1)}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := base
			mutate(&r)
			e.meter.Reset()
			_, err := e.lim.Acquire(ctx(), r)
			var ve *limiter.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want ValidationError, got %v", err)
			}
			if n := e.meter.Total().Requests; n != 0 {
				t.Fatalf("invalid request made %d DynamoDB calls", n)
			}
		})
	}
}

// An id that is not allowed is named as written, with the field it came in and no internal
// wrapper in the message.
func TestInvalidIDMessage(t *testing.T) {
	e := newEnv(t)
	_, err := e.lim.Acquire(ctx(), limiter.AcquireRequest{EntityID: "clé", Resource: "r", Limits: []limiter.Limit{rpm}, Consume: map[string]int64{"rpm": 1}})
	var ve *limiter.ValidationError
	if !errors.As(err, &ve) || ve.Field != "entity_id" ||
		err.Error() != "invalid entity_id: character 'é' (U+00E9) at position 3 is not allowed (use A-Z a-z 0-9 _ . : @ / + = -)" {
		t.Fatalf("got %v", err)
	}
}

func TestLimitChangeRebases(t *testing.T) {
	e := newEnv(t)
	small := limiter.PerMinute("rpm", 10)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{small}, Consume: map[string]int64{"rpm": 4}}
	mustAcquire(t, e.lim, req) // 6 left of 10
	big := limiter.PerMinute("rpm", 100)
	req.Limits = []limiter.Limit{big}
	req.Consume = map[string]int64{"rpm": 5}
	mustAcquire(t, e.lim, req) // the 6 left carry over to the new limit; 1 left
	if got := available(t, e, "k", "r", big); got["rpm"] != 1 {
		t.Fatalf("after re-base: %v, want 1", got)
	}
	// A fresh limiter (cold cache) refuses what the stored state cannot give.
	req.Consume = map[string]int64{"rpm": 2}
	var rle *limiter.RateLimitExceededError
	if _, err := e.newLimiter().Acquire(ctx(), req); !errors.As(err, &rle) {
		t.Fatalf("want refusal, got %v", err)
	}
}

// TestHugeLimitsRoundTrip stores states beyond 64 bits (1e15 millitokens × Unix ms) in DynamoDB
// and reads them back exactly.
func TestHugeLimitsRoundTrip(t *testing.T) {
	e := newEnv(t)
	huge := limiter.NewLimit("tpd", limiter.MaxTokens, limiter.MaxTokens, 24*time.Hour)
	slow := limiter.NewLimit("tpy", limiter.MaxTokens, 1, limiter.MaxRefillPeriod)
	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{huge, slow},
		Consume: map[string]int64{"tpd": limiter.MaxTokens - 1, "tpy": 7}}
	mustAcquire(t, e.lim, req)
	req.Consume = map[string]int64{"tpd": 1, "tpy": 1}
	mustAcquire(t, e.newLimiter(), req) // a cold limiter: the state is read back from DynamoDB
	if got := available(t, e, "k", "r", huge, slow); got["tpd"] != 0 || got["tpy"] != limiter.MaxTokens-8 {
		t.Fatalf("available %v", got)
	}
	e.clock.Advance(12 * time.Hour) // half a day refills half of 1e12 exactly
	if got := available(t, e, "k", "r", huge); got["tpd"] != limiter.MaxTokens/2 {
		t.Fatalf("after 12 h: %v", got)
	}
}
