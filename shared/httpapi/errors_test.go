package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{&limiter.ValidationError{Field: "consume.x", Message: "bad"}, 400, CodeInvalidRequest},
		{fmt.Errorf("wrapped: %w", limiter.ErrLeaseNotFound), 404, CodeLeaseNotFound},
		{limiter.ErrLeaseCommitted, 409, CodeLeaseCommitted},
		{limiter.ErrLeaseRolledBack, 409, CodeLeaseRolledBack},
		{fmt.Errorf("%w: x", limiter.ErrEntityNotFound), 404, CodeEntityNotFound},
		{limiter.ErrParentNotFound, 404, CodeParentNotFound},
		{limiter.ErrEntityExists, 409, CodeEntityExists},
		{limiter.ErrParentIsChild, 409, CodeParentIsChild},
		{limiter.ErrHasChildren, 409, CodeHasChildren},
		{limiter.ErrParentImmutable, 409, CodeParentImmutable},
		{limiter.ErrLimitsNotFound, 404, CodeLimitsNotFound},
		{&limiter.UnavailableError{Op: "charge", Err: errors.New("table zl-secret is gone")}, 503, CodeLimiterUnavailable},
		{context.DeadlineExceeded, 503, CodeLimiterUnavailable},
		{errors.New("something internal"), 500, CodeInternal},
		{invalid("f", "m"), 400, CodeInvalidRequest},
		{&http.MaxBytesError{Limit: 1}, 413, CodePayloadTooLarge},
	}
	for _, c := range cases {
		r := ErrorResponse(c.err)
		var body ErrorBody
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status || body.Error != c.code || r.Header["content-type"] != "application/json" {
			t.Errorf("%v: got %d %+v, want %d %s", c.err, r.Status, body, c.status, c.code)
		}
		if r.Err == nil {
			t.Errorf("%v: cause not kept for the log", c.err)
		}
		// 5xx never send their cause.
		if r.Status >= 500 && (body.Message == c.err.Error()) {
			t.Errorf("%v: cause sent to the caller", c.err)
		}
	}
	if b := ErrorResponse(&limiter.ValidationError{Field: "consume.x", Message: "bad"}).Body; string(b) != `{"error":"invalid_request","message":"bad","field":"consume.x"}` {
		t.Errorf("validation body %s", b)
	}
}

func TestRateLimitedResponse(t *testing.T) {
	e := &limiter.RateLimitExceededError{RetryAfter: 1500 * time.Millisecond, Statuses: []limiter.LimitStatus{
		{EntityID: "k", Resource: "r", Limit: limiter.PerMinute("rpm", 100), Available: 0, Requested: 1, Exceeded: true, RetryAfter: 600 * time.Millisecond},
		{EntityID: "k", Resource: "r", Limit: limiter.PerMinute("tpm", 1000), Available: 100, Requested: 200, Exceeded: true, RetryAfter: 1500 * time.Millisecond},
	}}
	r := ErrorResponse(fmt.Errorf("acquire: %w", e))
	want, _ := json.Marshal(e)
	if r.Status != 429 || string(r.Body) != string(want) {
		t.Fatalf("got %d %s, want the library's body %s", r.Status, r.Body, want)
	}
	if r.Header["retry-after"] != "2" {
		t.Errorf("Retry-After %q, want 2", r.Header["retry-after"])
	}
	if got := r.Header["ratelimit-policy"]; got != `"rpm";q=100;w=60, "tpm";q=1000;w=60` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if got := r.Header["ratelimit"]; got != `"rpm";r=0;t=60, "tpm";r=100;t=54` {
		t.Errorf("RateLimit %q", got)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	h := map[string]string{}
	SetRateLimitHeaders(h, []limiter.LimitStatus{
		{EntityID: "key", Limit: limiter.PerMinute("rpm", 100), Available: 99},
		{EntityID: "key", Limit: limiter.NewLimit("tpm", 20000, 10000, time.Minute), Available: -500},
		{EntityID: "org", Limit: limiter.PerMinute("rpm", 1000), Available: 1000},
		{EntityID: "key", Limit: limiter.NewLimit("slow", 3, 1, 10*time.Millisecond), Available: 2},
	})
	if got, want := h["ratelimit-policy"], `"rpm";q=100;w=60, "tpm";q=20000;w=120, "parent:rpm";q=1000;w=60, "slow";q=3;w=1`; got != want {
		t.Errorf("policy\n got %s\nwant %s", got, want)
	}
	if got, want := h["ratelimit"], `"rpm";r=99;t=1, "tpm";r=0;t=123, "parent:rpm";r=1000;t=0, "slow";r=2;t=1`; got != want {
		t.Errorf("state\n got %s\nwant %s", got, want)
	}
	h = map[string]string{}
	SetRateLimitHeaders(h, nil)
	if len(h) != 0 {
		t.Errorf("headers for no statuses: %v", h)
	}
	// Extremes do not overflow: a ten-year refill of 10^12 tokens.
	if s := refillSeconds(limiter.MaxTokens, limiter.NewLimit("x", limiter.MaxTokens, 1, limiter.MaxRefillPeriod)); s != -1 && s <= 0 {
		t.Errorf("extreme refill: %d", s)
	}
}
