package limiter

import "github.com/zeroae/zae-limiter-go/shared/tokenbucket"

// millis is the number of millitokens in a token.
const millis = tokenbucket.MillitokensPerToken

// validateLimits checks a set of limits: each valid, names unique, at most MaxLimits.
func validateLimits(ls []Limit) error {
	if len(ls) > MaxLimits {
		return invalid("limits", "at most %d limits, got %d", MaxLimits, len(ls))
	}
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if err := l.Validate(); err != nil {
			return err
		}
		if seen[l.Name] {
			return invalid("limits", "limit %q is given twice", l.Name)
		}
		seen[l.Name] = true
	}
	return nil
}

// params returns l in the bucket's integer units.
func params(l Limit) tokenbucket.Params {
	return tokenbucket.Params{
		Capacity: l.Capacity * millis,
		Amount:   l.RefillAmount * millis,
		Period:   l.RefillPeriod.Milliseconds(),
	}
}
