package tokenbucket

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func bigFloorDiv(a *big.Int, d int64) *big.Int {
	q, m := new(big.Int).DivMod(a, big.NewInt(d), new(big.Int)) // Euclidean: m ≥ 0, so q is the floor for d > 0
	_ = m
	return q
}

func saturate(b *big.Int) int64 {
	if b.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	if b.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return math.MinInt64
	}
	return b.Int64()
}

func TestInt128AgainstBigInt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, -1, 2, -2, 999, -1000, math.MaxInt64, math.MinInt64 + 1, 1 << 40, -(1 << 50)}
	for range 300 {
		vals = append(vals, r.Int64()-r.Int64()/2, int64(r.Uint32())-1<<31)
	}
	divs := []int64{1, 2, 3, 7, 1000, 86_400_000, math.MaxInt64}
	for i, a := range vals {
		b := vals[(i*7+3)%len(vals)]
		c := vals[(i*13+5)%len(vals)]
		x := Mul(a, b).Add(I128(c))
		want := new(big.Int).Add(new(big.Int).Mul(big.NewInt(a), big.NewInt(b)), big.NewInt(c))
		if x.Big().Cmp(want) != 0 {
			t.Fatalf("%d*%d+%d = %s, want %s", a, b, c, x, want)
		}
		if got := x.Sub(I128(c)).Big(); got.Cmp(new(big.Int).Mul(big.NewInt(a), big.NewInt(b))) != 0 {
			t.Fatalf("sub: %s", got)
		}
		if x.String() != want.String() {
			t.Fatalf("String() = %s, want %s", x.String(), want)
		}
		wide := Mul(a, b).Add(Mul(c, 1<<40)) // beyond 64 bits
		wantBig := new(big.Int).Add(new(big.Int).Mul(big.NewInt(a), big.NewInt(b)), new(big.Int).Mul(big.NewInt(c), big.NewInt(1<<40)))
		if wide.String() != wantBig.String() {
			t.Fatalf("String() = %s, want %s", wide.String(), wantBig)
		}
		if q, err := ParseInt128(wantBig.String()); err != nil || q != wide {
			t.Fatalf("ParseInt128(%s) = %v, %v", wantBig, q, err)
		}
		p, err := ParseInt128(x.String())
		if err != nil || p != x {
			t.Fatalf("parse(%s) = %v, %v", x, p, err)
		}
		for _, d := range divs {
			if got, want := x.FloorDiv(d), saturate(bigFloorDiv(want, d)); got != want {
				t.Fatalf("floor(%s/%d) = %d, want %d", x, d, got, want)
			}
			neg := new(big.Int).Neg(want)
			ceil := new(big.Int).Neg(bigFloorDiv(neg, d))
			if got, want := x.CeilDiv(d), saturate(ceil); got != want {
				t.Fatalf("ceil(%s/%d) = %d, want %d", x, d, got, want)
			}
		}
		if got, want := x.Cmp(I128(c)), want.Cmp(big.NewInt(c)); got != want {
			t.Fatalf("cmp(%s, %d) = %d, want %d", x, c, got, want)
		}
		if x.Sign() != want.Sign() {
			t.Fatalf("sign(%s) = %d", x, x.Sign())
		}
	}
}

func TestParseInt128Rejects(t *testing.T) {
	for _, s := range []string{"", "-", "1.5", "abc", "1e5", "+-1", "99999999999999999999999999999999999999999", "170141183460469231731687303715884105728", "-170141183460469231731687303715884105729"} {
		if _, err := ParseInt128(s); err == nil {
			t.Errorf("ParseInt128(%q) accepted", s)
		}
	}
	if v, err := ParseInt128("170141183460469231731687303715884105727"); err != nil || v.Sign() != 1 {
		t.Errorf("max int128: %v %v", v, err)
	}
}
