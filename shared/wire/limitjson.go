package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LimitJSON is the JSON form of a limit. It has two spellings:
//
//   - full: {"name","capacity","refill_amount","refill_period_seconds"};
//   - shorthand: {"name","rate","period","burst"} with period one of second, minute, hour or day
//     and burst (the capacity) defaulting to rate.
//
// A limit uses one spelling, never a mix. Responses always use the full one.
type LimitJSON struct {
	Name string `json:"name"`

	Capacity            *int64      `json:"capacity,omitempty"`
	RefillAmount        *int64      `json:"refill_amount,omitempty"`
	RefillPeriodSeconds json.Number `json:"refill_period_seconds,omitempty"` // whole milliseconds

	Rate   *int64 `json:"rate,omitempty"`
	Period string `json:"period,omitempty"`
	Burst  *int64 `json:"burst,omitempty"`
}

// periodNamed returns the duration a period of the shorthand spelling names.
func periodNamed(name string) (time.Duration, bool) {
	switch name {
	case "second":
		return time.Second, true
	case "minute":
		return time.Minute, true
	case "hour":
		return time.Hour, true
	case "day":
		return 24 * time.Hour, true
	}
	return 0, false
}

// JSON returns the full JSON spelling of l.
func (l Limit) JSON() LimitJSON {
	c, a := l.Capacity, l.RefillAmount
	return LimitJSON{Name: l.Name, Capacity: &c, RefillAmount: &a, RefillPeriodSeconds: secondsNumber(l.RefillPeriod)}
}

// LimitsJSON returns the full JSON spelling of every limit (an empty list, never null).
func LimitsJSON(ls []Limit) []LimitJSON {
	out := make([]LimitJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.JSON())
	}
	return out
}

// secondsNumber writes a whole number of milliseconds as decimal seconds ("60", "0.5").
func secondsNumber(d time.Duration) json.Number {
	ms := d.Milliseconds()
	if ms%1000 == 0 {
		return json.Number(strconv.FormatInt(ms/1000, 10))
	}
	return json.Number(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
}

// Limiter returns the limit l describes. field names l in errors (such as "limits[2]").
func (l LimitJSON) Limiter(field string) (Limit, error) {
	full := l.Capacity != nil || l.RefillAmount != nil || l.RefillPeriodSeconds != ""
	short := l.Rate != nil || l.Period != "" || l.Burst != nil
	var out Limit
	switch {
	case full && short:
		return out, InvalidRequest(field, "use either capacity, refill_amount and refill_period_seconds or rate, period and burst, not both")
	case full:
		if l.Capacity == nil || l.RefillAmount == nil || l.RefillPeriodSeconds == "" {
			return out, InvalidRequest(field, "capacity, refill_amount and refill_period_seconds are all required")
		}
		period, err := parseSeconds(l.RefillPeriodSeconds)
		if err != nil {
			return out, InvalidRequest(field+".refill_period_seconds", "%v", err)
		}
		out = NewLimit(l.Name, *l.Capacity, *l.RefillAmount, period)
	case short:
		if l.Rate == nil || l.Period == "" {
			return out, InvalidRequest(field, "rate and period are required (burst defaults to rate)")
		}
		period, ok := periodNamed(l.Period)
		if !ok {
			return out, InvalidRequest(field+".period", "must be second, minute, hour or day, got %q", l.Period)
		}
		out = NewLimit(l.Name, *l.Rate, *l.Rate, period)
		if l.Burst != nil {
			out = out.WithBurst(*l.Burst)
		}
	default:
		return out, InvalidRequest(field, "give capacity, refill_amount and refill_period_seconds, or rate and period")
	}
	if err := out.Validate(); err != nil {
		return out, err
	}
	return out, nil
}

// maxPeriodMs bounds the parsed period before the limiter's own check, so that no conversion
// overflows.
const maxPeriodMs = int64(MaxRefillPeriod / time.Millisecond)

// parseSeconds reads a plain decimal number of seconds ("60", "0.5", "0.001") exactly and
// returns it as a duration of whole milliseconds. Exponents are refused: they would let a short
// string name an enormous number.
func parseSeconds(n json.Number) (time.Duration, error) {
	s := string(n)
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if !digits(whole) || len(whole) > 12 || len(frac) > 3 || !digits(frac) && frac != "" || strings.HasSuffix(s, ".") {
		return 0, fmt.Errorf("%q: write seconds as a plain decimal with at most 3 decimals, such as 60 or 0.5", s)
	}
	ms, _ := strconv.ParseInt(whole, 10, 64)
	ms *= 1000
	if frac != "" {
		f, _ := strconv.ParseInt((frac + "00")[:3], 10, 64)
		ms += f
	}
	if ms <= 0 || ms > maxPeriodMs {
		return 0, fmt.Errorf("must be 0.001 to %d seconds, got %s", maxPeriodMs/1000, s)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// limitsFrom converts JSON limits, at most MaxLimits of them.
func limitsFrom(field string, ls []LimitJSON) ([]Limit, error) {
	if len(ls) > MaxLimits {
		return nil, InvalidRequest(field, "at most %d limits, got %d", MaxLimits, len(ls))
	}
	if ls == nil {
		return nil, nil
	}
	out := make([]Limit, 0, len(ls))
	for i, l := range ls {
		lim, err := l.Limiter(fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, lim)
	}
	return out, nil
}
