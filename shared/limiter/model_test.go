package limiter_test

import (
	"errors"
	"fmt"
	rat "math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// model is one limit in exact rational arithmetic, written independently of package
// tokenbucket: raw is the bucket's level at time t (ms) before the capacity cap, so that the
// level at any instant s, before or after t (clocks are skewed), is min(C, raw + (s−t)·rate).
// A take from a full bucket first drops what is above the capacity; refunds do not.
type model struct {
	capacity *rat.Rat // tokens
	rate     *rat.Rat // tokens per ms
	raw      *rat.Rat
	t        int64
}

// requestTTL is the lease TTL of TestModel's request-bound leases.
const requestTTL = 20 * time.Second

func newModel(l limiter.Limit, t0 int64) *model {
	return &model{capacity: rat.NewRat(l.Capacity, 1), rate: rat.NewRat(l.RefillAmount, l.RefillPeriod.Milliseconds()),
		raw: rat.NewRat(l.Capacity, 1), t: t0}
}

func (m *model) uncapped(now int64) *rat.Rat {
	d := new(rat.Rat).Mul(m.rate, rat.NewRat(now-m.t, 1))
	return d.Add(d, m.raw)
}

func (m *model) level(now int64) *rat.Rat {
	u := m.uncapped(now)
	if u.Cmp(m.capacity) > 0 {
		return new(rat.Rat).Set(m.capacity)
	}
	return u
}

// charge applies x tokens at now: a full bucket is capped first when x > 0.
func (m *model) charge(now, x int64) {
	u := m.uncapped(now)
	if x > 0 && u.Cmp(m.capacity) >= 0 {
		u.Set(m.capacity)
	}
	m.raw, m.t = u.Sub(u, rat.NewRat(x, 1)), now
}

// wait returns the whole ms until x tokens are available, rounded up.
func (m *model) wait(now, x int64) int64 {
	need := new(rat.Rat).Sub(rat.NewRat(x, 1), m.level(now))
	if need.Sign() <= 0 {
		return 0
	}
	q := need.Quo(need, m.rate)
	n := new(rat.Int).Quo(q.Num(), q.Denom())
	if new(rat.Rat).SetInt(n).Cmp(q) < 0 {
		n.Add(n, rat.NewInt(1))
	}
	return n.Int64()
}

func floorTokens(r *rat.Rat) int64 {
	n := new(rat.Int)
	n.Div(r.Num(), r.Denom()) // Euclidean division: floor for a positive denominator
	return n.Int64()
}

// TestModel drives three limiter instances with skewed clocks (as Lambda instances on
// different hosts) through random acquires, adjusts, commits and rollbacks of one bucket, and
// checks every decision, status, wait and counter against the exact model. With stored leases
// (in their bucket item while it has room, else lease items), each adjust, commit and rollback
// is made by a random instance that resumes the lease by id. With request ids, a third of the
// admitted acquires is repeated at once by a random instance (a client's retry), which must
// answer with the same lease and charge nothing.
func TestModel(t *testing.T) {
	for _, mode := range []string{"memory", "stored", "request"} {
		t.Run(mode, func(t *testing.T) { testModel(t, mode) })
	}
}

func testModel(t *testing.T, mode string) {
	stored := mode != "memory"
	e := newEnv(t)
	limits := []limiter.Limit{
		limiter.NewLimit("a", 20, 7, 3*time.Second),
		limiter.NewLimit("b", 1500, 1000, time.Minute),
	}
	skews := []time.Duration{-700 * time.Millisecond, 0, 1300 * time.Millisecond}
	var lims []*limiter.Limiter
	for _, s := range skews {
		lims = append(lims, limiter.New(e.client, e.table, limiter.WithClock(func() time.Time { return e.clock.Now().Add(s) })))
	}
	models := map[string]*model{}
	for _, l := range limits {
		models[l.Name] = newModel(l, 0) // full at every instant before the first write
	}
	type open struct {
		lease *limiter.Lease
		held  map[string]int64
		by    int // the instance that acquired it, whose clock its writes use
	}
	clockOf := func(i int) int64 { return e.clock.Now().Add(skews[i]).UnixMilli() }
	var leases []open
	rng := rand.New(rand.NewPCG(8, 8))
	var consumed = map[string]int64{}
	var acquires int64
	steps := 400
	// resume hands lease i to a random instance, as another Lambda instance settling it by id
	// (stored leases only); its writes use that instance's clock.
	resume := func(i int) {
		if !stored {
			return
		}
		j := rng.IntN(len(lims))
		l, err := lims[j].Lease(ctx(), leases[i].lease.ID())
		if err != nil {
			t.Fatalf("resume lease %s: %v", leases[i].lease.ID(), err)
		}
		leases[i].lease, leases[i].by = l, j
	}
	var admitted, refused, adjusted, rolledBack, inItem int
	for step := range steps {
		e.clock.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
		// An expired lease stands as committed: the model keeps its charge, and it leaves the
		// walk before any instance's clock reaches its expiry.
		kept := leases[:0]
		for _, o := range leases {
			if !stored || o.lease.ExpiresAt().UnixMilli() > clockOf(len(lims)-1)+1 {
				kept = append(kept, o)
			}
		}
		leases = kept
		k := rng.IntN(len(lims))
		lim, now := lims[k], clockOf(k)
		switch op := rng.IntN(10); {
		case op < 5 || len(leases) == 0: // acquire
			want := map[string]int64{"a": int64(rng.IntN(6)), "b": int64(rng.IntN(400))}
			ok := true
			for name, x := range want {
				if models[name].level(now).Cmp(rat.NewRat(x, 1)) < 0 && x > 0 {
					ok = false
				}
			}
			req := limiter.AcquireRequest{EntityID: "m", Resource: "r", Limits: limits, Consume: want}
			if stored {
				req.LeaseTTL = limiter.MaxLeaseTTL
			}
			if mode == "request" {
				// Short-lived, so that leases expire during the walk and the bucket keeps
				// switching between in-item leases and lease items (forwarded ones block
				// request-bound leases in the item until they expire).
				req.RequestID, req.LeaseTTL = fmt.Sprintf("req-%d", step), requestTTL
			}
			lease, err := lim.Acquire(ctx(), req)
			var rle *limiter.RateLimitExceededError
			switch {
			case ok && err != nil:
				t.Fatalf("step %d: model admits %v at %d, limiter: %v", step, want, now, err)
			case !ok && !errors.As(err, &rle):
				t.Fatalf("step %d: model refuses %v at %d, limiter: %v", step, want, now, err)
			case !ok:
				var longest int64
				for name, x := range want {
					if x > 0 {
						longest = max(longest, models[name].wait(now, x))
					}
				}
				refused++
				if rle.RetryAfter != time.Duration(longest)*time.Millisecond {
					t.Fatalf("step %d: retry after %s, model %d ms", step, rle.RetryAfter, longest)
				}
				for _, s := range rle.Statuses {
					if s.Available != floorTokens(models[s.Limit.Name].level(now)) {
						t.Fatalf("step %d: refusal status %s %d, model %s", step, s.Limit.Name, s.Available, models[s.Limit.Name].level(now).FloatString(3))
					}
				}
			default:
				for name, x := range want {
					if x > 0 {
						models[name].charge(now, x)
					}
					consumed[name] += x
				}
				acquires++
				admitted++
				for _, s := range lease.Statuses() {
					if stored && s.Estimated {
						continue // a lease item's transaction answers nothing
					}
					if s.Available != floorTokens(models[s.Limit.Name].level(now)) || s.Estimated {
						t.Fatalf("step %d: status %s %d (estimated %v), model %s", step, s.Limit.Name, s.Available, s.Estimated, models[s.Limit.Name].level(now).FloatString(3))
					}
				}
				by := k
				if mode == "request" && rng.IntN(3) == 0 {
					by = rng.IntN(len(lims))
					again, err := lims[by].Acquire(ctx(), req)
					if err != nil || again.ID() != lease.ID() {
						t.Fatalf("step %d: repeated acquire: %v %v, want lease %s", step, again, err, lease.ID())
					}
					for name, x := range want {
						if again.Consumed()[name] != x {
							t.Fatalf("step %d: repeated acquire holds %v, want %v", step, again.Consumed(), want)
						}
					}
					lease = again
				}
				if strings.HasPrefix(lease.ID(), "b.") {
					inItem++
				}
				leases = append(leases, open{lease, want, by})
			}
		case op < 7: // adjust, up or down (never below what the lease holds)
			i := rng.IntN(len(leases))
			resume(i)
			adj := map[string]int64{"a": int64(rng.IntN(7)) - leases[i].held["a"]/2, "b": int64(rng.IntN(900)) - 300}
			adj["b"] = max(adj["b"], -leases[i].held["b"])
			if err := leases[i].lease.Adjust(ctx(), adj); err != nil {
				t.Fatalf("step %d: adjust %v: %v", step, adj, err)
			}
			adjusted++
			// The lease's own limiter wrote it, at that limiter's clock.
			for name, x := range adj {
				if x != 0 {
					models[name].charge(clockOf(leases[i].by), x)
				}
				leases[i].held[name] += x
				consumed[name] += x
			}
		case op < 8: // commit
			i := rng.IntN(len(leases))
			resume(i)
			if err := leases[i].lease.Commit(ctx()); err != nil {
				t.Fatal(err)
			}
			leases = append(leases[:i], leases[i+1:]...)
		default: // rollback
			i := rng.IntN(len(leases))
			resume(i)
			if err := leases[i].lease.Rollback(ctx()); err != nil {
				t.Fatal(err)
			}
			ln := clockOf(leases[i].by)
			for name, x := range leases[i].held {
				if x != 0 {
					models[name].charge(ln, -x)
				}
				consumed[name] -= x
			}
			acquires--
			rolledBack++
			leases = append(leases[:i], leases[i+1:]...)
		}
		if step%25 == 0 {
			av, err := lim.Available(ctx(), limiter.AvailableRequest{EntityID: "m", Resource: "r", Limits: limits})
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range models {
				if av[name] != floorTokens(m.level(now)) {
					t.Fatalf("step %d: available %s %d, model %s", step, name, av[name], m.level(now).FloatString(3))
				}
			}
		}
	}
	t.Logf("%d admitted (%d in their bucket item), %d refused, %d adjusted, %d rolled back", admitted, inItem, refused, adjusted, rolledBack)
	if mode == "request" && (inItem < admitted/5 || inItem > admitted*4/5) {
		t.Fatalf("%d of %d request-bound leases in their bucket item: the walk does not cover both paths", inItem, admitted)
	}
	if admitted < steps/10 || refused < steps/10 {
		t.Fatalf("the random walk does not reach both sides of the limits: %d admitted, %d refused", admitted, refused)
	}
	c, acq := bucketOf(t, e, "m", "r")
	if c["a"] != consumed["a"] || c["b"] != consumed["b"] || acq != acquires {
		t.Fatalf("counters %v %d, model %v %d", c, acq, consumed, acquires)
	}
}
