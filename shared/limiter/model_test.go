package limiter_test

import (
	"errors"
	"fmt"
	rat "math/big"
	"math/rand/v2"
	"slices"
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
// answer with the same lease and charge nothing. With cascade, the leases are request-bound
// and charge the entity and its parent (the entry in the child's item holds both), and a
// quarter of the acquires take from the parent alone, so that the two levels differ.
func TestModel(t *testing.T) {
	for _, mode := range []string{"memory", "stored", "request", "cascade"} {
		t.Run(mode, func(t *testing.T) { testModel(t, mode) })
	}
}

// requestTTL is the lease TTL of TestModel's request-bound leases.
const requestTTL = 20 * time.Second

func testModel(t *testing.T, mode string) {
	stored, requests := mode != "memory", mode == "request" || mode == "cascade"
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
	entities := []string{"m"} // the levels a lease charges
	if mode == "cascade" {
		entities = append(entities, "p")
		for _, ent := range []limiter.Entity{{ID: "p"}, {ID: "m", ParentID: "p", Cascade: true}} {
			if _, err := e.lim.CreateEntity(ctx(), ent); err != nil {
				t.Fatal(err)
			}
		}
	}
	models := map[string]map[string]*model{} // by entity, then limit
	for _, ent := range entities {
		models[ent] = map[string]*model{}
		for _, l := range limits {
			models[ent][l.Name] = newModel(l, 0) // full at every instant before the first write
		}
	}
	type open struct {
		lease *limiter.Lease
		held  map[string]int64
		by    int // the instance that acquired it, whose clock its writes use
	}
	clockOf := func(i int) int64 { return e.clock.Now().Add(skews[i]).UnixMilli() }
	var leases []open
	rng := rand.New(rand.NewPCG(8, 8))
	consumed := map[string]map[string]int64{} // by entity, then limit
	acquires := map[string]int64{}
	for _, ent := range entities {
		consumed[ent] = map[string]int64{}
	}
	// charge applies x of every limit of amounts at the levels ents, at now.
	charge := func(ents []string, now int64, amounts map[string]int64, sign int64) {
		for _, ent := range ents {
			for name, x := range amounts {
				if x != 0 {
					models[ent][name].charge(now, sign*x)
				}
				consumed[ent][name] += sign * x
			}
		}
	}
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
			req := limiter.AcquireRequest{EntityID: "m", Resource: "r", Limits: limits, Consume: want}
			levels := entities
			direct := mode == "cascade" && rng.IntN(4) == 0
			switch {
			case direct: // from the parent alone, committed at once
				req.EntityID, levels = "p", entities[1:]
			case stored:
				req.LeaseTTL = limiter.MaxLeaseTTL
			}
			if requests && !direct {
				// Short-lived, so that leases expire during the walk and the bucket keeps
				// switching between in-item leases and lease items (forwarded ones block
				// request-bound leases in the item until they expire).
				req.RequestID, req.LeaseTTL = fmt.Sprintf("req-%d", step), requestTTL
			}
			ok := true
			for _, ent := range levels {
				for name, x := range want {
					if models[ent][name].level(now).Cmp(rat.NewRat(x, 1)) < 0 && x > 0 {
						ok = false
					}
				}
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
				for _, ent := range levels {
					if slices.ContainsFunc(rle.Statuses, func(s limiter.LimitStatus) bool { return s.EntityID == ent && s.Estimated }) {
						continue // a level the refusing transaction did not return: not what refused
					}
					for name, x := range want {
						if x > 0 {
							longest = max(longest, models[ent][name].wait(now, x))
						}
					}
				}
				refused++
				if rle.RetryAfter != time.Duration(longest)*time.Millisecond {
					t.Fatalf("step %d: retry after %s, model %d ms", step, rle.RetryAfter, longest)
				}
				for _, s := range rle.Statuses {
					if s.Estimated {
						continue // a level the refusing transaction did not return
					}
					if m := models[s.EntityID][s.Limit.Name]; s.Available != floorTokens(m.level(now)) {
						t.Fatalf("step %d: refusal status %s/%s %d, model %s", step, s.EntityID, s.Limit.Name, s.Available, m.level(now).FloatString(3))
					}
				}
			default:
				charge(levels, now, want, 1)
				for _, ent := range levels {
					acquires[ent]++
				}
				admitted++
				for _, s := range lease.Statuses() {
					if stored && s.Estimated {
						continue // a transaction answers nothing
					}
					if m := models[s.EntityID][s.Limit.Name]; s.Available != floorTokens(m.level(now)) || s.Estimated {
						t.Fatalf("step %d: status %s/%s %d (estimated %v), model %s", step, s.EntityID, s.Limit.Name, s.Available, s.Estimated, m.level(now).FloatString(3))
					}
				}
				if direct {
					break
				}
				by := k
				if requests && rng.IntN(3) == 0 {
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
			charge(entities, clockOf(leases[i].by), adj, 1)
			for name, x := range adj {
				leases[i].held[name] += x
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
			charge(entities, clockOf(leases[i].by), leases[i].held, -1)
			for _, ent := range entities {
				acquires[ent]--
			}
			rolledBack++
			leases = append(leases[:i], leases[i+1:]...)
		}
		if step%25 == 0 {
			for _, ent := range entities {
				av, err := lim.Available(ctx(), limiter.AvailableRequest{EntityID: ent, Resource: "r", Limits: limits})
				if err != nil {
					t.Fatal(err)
				}
				for name, m := range models[ent] {
					if av[name] != floorTokens(m.level(now)) {
						t.Fatalf("step %d: available %s/%s %d, model %s", step, ent, name, av[name], m.level(now).FloatString(3))
					}
				}
			}
		}
	}
	t.Logf("%d admitted (%d leases in their bucket item), %d refused, %d adjusted, %d rolled back", admitted, inItem, refused, adjusted, rolledBack)
	if admitted < steps/10 || refused < steps/10 {
		t.Fatalf("the random walk does not reach both sides of the limits: %d admitted, %d refused", admitted, refused)
	}
	if requests && (inItem < admitted/5 || inItem > admitted*4/5) {
		t.Fatalf("%d of %d admitted acquires were request-bound leases in their bucket item: the walk does not cover both paths", inItem, admitted)
	}
	for _, ent := range entities {
		c, acq := bucketOf(t, e, ent, "r")
		if c["a"] != consumed[ent]["a"] || c["b"] != consumed[ent]["b"] || acq != acquires[ent] {
			t.Fatalf("%s: counters %v %d, model %v %d", ent, c, acq, consumed[ent], acquires[ent])
		}
	}
}
