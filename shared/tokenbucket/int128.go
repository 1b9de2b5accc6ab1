package tokenbucket

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Int128 is a signed 128-bit integer in two's complement. The zero value is 0.
//
// Bucket state is a product of a timestamp and a refill amount (see Params), which does not fit
// in 64 bits for large limits; 128 bits hold every state the validated limits can produce, and
// DynamoDB stores it exactly (numbers have 38 significant digits). The arithmetic never
// allocates, so the decision path stays allocation-free.
type Int128 struct {
	hi int64
	lo uint64
}

// I128 returns v as an Int128.
func I128(v int64) Int128 {
	if v < 0 {
		return Int128{hi: -1, lo: uint64(v)}
	}
	return Int128{lo: uint64(v)}
}

// Mul returns a·b as an Int128; it cannot overflow.
func Mul(a, b int64) Int128 {
	hi, lo := bits.Mul64(absU(a), absU(b))
	r := Int128{hi: int64(hi), lo: lo}
	if (a < 0) != (b < 0) {
		return r.Neg()
	}
	return r
}

func absU(v int64) uint64 {
	if v < 0 {
		return uint64(-v) // two's complement: also right for math.MinInt64
	}
	return uint64(v)
}

// Add returns a+b.
func (a Int128) Add(b Int128) Int128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	return Int128{hi: a.hi + b.hi + int64(carry), lo: lo}
}

// Sub returns a−b.
func (a Int128) Sub(b Int128) Int128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	return Int128{hi: a.hi - b.hi - int64(borrow), lo: lo}
}

// Neg returns −a.
func (a Int128) Neg() Int128 { return Int128{}.Sub(a) }

// Sign returns -1, 0 or +1.
func (a Int128) Sign() int {
	switch {
	case a.hi < 0:
		return -1
	case a.hi == 0 && a.lo == 0:
		return 0
	default:
		return 1
	}
}

// Cmp returns -1 if a < b, 0 if a == b and +1 if a > b.
func (a Int128) Cmp(b Int128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// Less reports whether a < b.
func (a Int128) Less(b Int128) bool { return a.Cmp(b) < 0 }

// divU divides the magnitude of a by d > 0, returning the quotient's magnitude and whether there
// was a remainder.
func divU(a Int128, d int64) (qhi, qlo uint64, rem bool) {
	u := a
	if a.hi < 0 {
		u = a.Neg()
	}
	hi := uint64(u.hi)
	qhi = hi / uint64(d)
	r := hi % uint64(d)
	qlo, r2 := bits.Div64(r, u.lo, uint64(d))
	return qhi, qlo, r2 != 0
}

// FloorDiv returns floor(a/d) for d > 0, saturated to the int64 range.
func (a Int128) FloorDiv(d int64) int64 { return a.div(d, a.hi < 0) }

// CeilDiv returns ceil(a/d) for d > 0, saturated to the int64 range.
func (a Int128) CeilDiv(d int64) int64 { return a.div(d, a.hi >= 0) }

// div divides a by d > 0, rounding the magnitude of the quotient up when roundUp is set and a
// remainder is left, down otherwise.
func (a Int128) div(d int64, roundUp bool) int64 {
	qhi, qlo, rem := divU(a, d)
	if roundUp && rem {
		qlo, qhi = incr(qhi, qlo)
	}
	if a.hi < 0 {
		if qhi != 0 || qlo > 1<<63 {
			return math.MinInt64
		}
		return int64(-qlo) // qlo ≤ 2^63: the negation wraps to the right value
	}
	if qhi != 0 || qlo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(qlo)
}

func incr(hi, lo uint64) (uint64, uint64) {
	lo, c := bits.Add64(lo, 1, 0)
	return lo, hi + c
}

// String returns a in base 10. It does not use math/big: bucket states are formatted on every
// write.
func (a Int128) String() string {
	if a.hi == 0 && a.lo <= math.MaxInt64 || a.hi == -1 && a.lo > math.MaxInt64 {
		return strconv.FormatInt(int64(a.lo), 10)
	}
	u, sign := a, ""
	if a.hi < 0 {
		u, sign = a.Neg(), "-"
	}
	if u.hi == 0 {
		return sign + strconv.FormatUint(u.lo, 10)
	}
	// |a| < 2^127, so |a| / 10^19 < 2^64: two 64-bit chunks suffice.
	const e19 = 10_000_000_000_000_000_000
	hiQ, hiR := uint64(u.hi)/e19, uint64(u.hi)%e19
	q, r := bits.Div64(hiR, u.lo, e19)
	if hiQ != 0 {
		return a.Big().String() // unreachable for |a| < 2^127; kept for safety
	}
	low := strconv.FormatUint(r, 10)
	return sign + strconv.FormatUint(q, 10) + strings.Repeat("0", 19-len(low)) + low
}

// Big returns a as a *big.Int.
func (a Int128) Big() *big.Int {
	u := a
	if a.hi < 0 {
		u = a.Neg()
	}
	b := new(big.Int).SetUint64(uint64(u.hi))
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(u.lo))
	if a.hi < 0 {
		b.Neg(b)
	}
	return b
}

// ErrOutOfRange is returned by ParseInt128 for a number that is not an integer in the Int128
// range.
var ErrOutOfRange = errors.New("tokenbucket: number is not a 128-bit integer")

// ParseInt128 parses a base-10 integer such as DynamoDB returns for a Number attribute.
func ParseInt128(s string) (Int128, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return I128(v), nil
	}
	digits, neg := s, false
	if strings.HasPrefix(digits, "-") {
		digits, neg = digits[1:], true
	}
	if len(digits) == 0 || len(digits) > 39 {
		return Int128{}, ErrOutOfRange
	}
	var hi, lo uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return Int128{}, ErrOutOfRange
		}
		// (hi, lo) = (hi, lo)·10 + digit, refusing anything that reaches 2^127.
		h1, l1 := bits.Mul64(lo, 10)
		h2, h3 := bits.Mul64(hi, 10)
		if h2 != 0 {
			return Int128{}, ErrOutOfRange
		}
		var c1, c2 uint64
		lo, c1 = bits.Add64(l1, uint64(c-'0'), 0)
		hi, c2 = bits.Add64(h3, h1, c1)
		if c2 != 0 || hi >= 1<<63 {
			return Int128{}, ErrOutOfRange
		}
	}
	r := Int128{hi: int64(hi), lo: lo}
	if neg {
		r = r.Neg()
	}
	return r, nil
}

// AddChecked returns a+b and whether the sum is exact: false when it overflows the Int128
// range (the returned value has then wrapped and must not be used).
func (a Int128) AddChecked(b Int128) (Int128, bool) {
	s := a.Add(b)
	if (a.hi < 0) == (b.hi < 0) && (s.hi < 0) != (a.hi < 0) {
		return s, false
	}
	return s, true
}

// Quo returns a/d for d > 0, truncated toward zero (as Go's / on integers).
func (a Int128) Quo(d int64) Int128 {
	qhi, qlo, _ := divU(a, d)
	q := Int128{hi: int64(qhi), lo: qlo}
	if a.hi < 0 {
		return q.Neg()
	}
	return q
}

// Int64 returns a as an int64 and whether it fits.
func (a Int128) Int64() (int64, bool) {
	if a.hi == 0 && a.lo <= math.MaxInt64 || a.hi == -1 && a.lo > math.MaxInt64 {
		return int64(a.lo), true
	}
	return 0, false
}

// MarshalJSON encodes a as a JSON integer, exactly (no float, whatever its size).
func (a Int128) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON decodes a JSON integer; a fraction, an exponent, a string or a number outside
// the Int128 range is an error.
func (a *Int128) UnmarshalJSON(b []byte) error {
	v, err := ParseInt128(string(b))
	if err != nil {
		return fmt.Errorf("tokenbucket: %s is not a 128-bit integer", b)
	}
	*a = v
	return nil
}
