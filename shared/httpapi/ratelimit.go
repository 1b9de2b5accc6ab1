package httpapi

import (
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// SetRateLimitHeaders sets the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers in h, one list member per status:
//
//	RateLimit-Policy: "rpm";q=100;w=60, "tpm";q=10000;w=60
//	RateLimit: "rpm";r=99;t=1, "tpm";r=9500;t=3
//
// The policy name is the limit's name; a limit of another entity than the first status's
// (the parent, with cascade) is named "parent:<name>", which no limit name can collide with.
// q is the capacity, w the seconds to refill it from empty, r the tokens remaining (never
// negative) and t the seconds until the bucket is full again. A granted acquire's or an
// adjust's statuses are taken after the write and a refusal's before it (nothing was taken), so
// Available is what remains either way. Nothing is set for no statuses.
func SetRateLimitHeaders(h map[string]string, statuses []limiter.LimitStatus) {
	if len(statuses) == 0 {
		return
	}
	var policy, state strings.Builder
	first := statuses[0].EntityID
	for i, s := range statuses {
		if i > 0 {
			policy.WriteString(", ")
			state.WriteString(", ")
		}
		name := s.Limit.Name
		if s.EntityID != first {
			name = "parent:" + name
		}
		c := max(s.Limit.Capacity, 0)
		policy.WriteString(strconv.Quote(name))
		policy.WriteString(";q=")
		policy.WriteString(strconv.FormatInt(c, 10))
		if w := refillSeconds(c, s.Limit); w >= 0 {
			policy.WriteString(";w=")
			policy.WriteString(strconv.FormatInt(w, 10))
		}
		remaining := min(max(s.Available, 0), c)
		state.WriteString(strconv.Quote(name))
		state.WriteString(";r=")
		state.WriteString(strconv.FormatInt(remaining, 10))
		if t := refillSeconds(c-min(s.Available, c), s.Limit); t >= 0 {
			state.WriteString(";t=")
			state.WriteString(strconv.FormatInt(t, 10))
		}
	}
	h["ratelimit-policy"] = policy.String()
	for _, s := range statuses {
		if s.Estimated {
			return // the remaining tokens are not known: say nothing rather than overstate
		}
	}
	h["ratelimit"] = state.String()
}

// refillSeconds returns the whole seconds, rounded up, that limit l takes to refill tokens;
// -1 when l carries no refill (a status decoded from JSON).
func refillSeconds(tokens int64, l limiter.Limit) int64 {
	if tokens <= 0 {
		return 0
	}
	periodMs := uint64(l.RefillPeriod / time.Millisecond)
	if l.RefillAmount <= 0 || periodMs == 0 {
		return -1
	}
	// tokens·period/amount in ms, exactly: tokens and amount are at most 10^12 and the period
	// at most ten years of ms, so the product fits in 128 bits and the quotient in 64.
	den := uint64(l.RefillAmount) * 1000
	hi, lo := bits.Mul64(uint64(tokens), periodMs)
	if hi >= den {
		return -1
	}
	q, r := bits.Div64(hi, lo, den)
	if r != 0 {
		q++
	}
	return int64(q)
}
