// Package tokenbucket is the integer arithmetic of a token bucket with exact, continuous refill.
//
// A bucket of capacity C refills A every P and starts full. Amounts are integer millitokens
// (1 token = 1000 millitokens) and time is integer Unix milliseconds, so nothing is ever rounded
// in stored state. The state of a bucket is one number E, its empty time scaled by the refill
// amount: E = Z·A, where Z is the instant at which the bucket would have been (or will be) empty.
// The level at instant now is then
//
//	level(now) = min(C, floor((now·A − E) / P))
//
// which is the generic cell rate algorithm written for a bucket: refill is implicit in the
// passing of time and never has to be written. Taking x millitokens from a bucket that is not
// full adds x·P to E, exactly, whatever the time, so concurrent takes commute and a store can
// apply them as a conditional ADD without reading first. A bucket that is full (E ≤ Floor(now))
// is first clamped to Floor(now): tokens above capacity are not kept. Adjustments may push the
// level below zero; time brings it back.
//
// Every function here is pure: it takes the current time and returns new values, and the caller
// decides whether and how to persist them.
package tokenbucket

// MillitokensPerToken is the number of millitokens in a token: amounts are stored and computed
// in millitokens and shown in whole tokens.
const MillitokensPerToken = 1000

// Params are a limit's parameters in the bucket's integer units.
type Params struct {
	Capacity int64 // maximum level, in millitokens; > 0
	Amount   int64 // millitokens refilled every Period; > 0
	Period   int64 // refill period in milliseconds; > 0
}

// Floor returns the lowest state a bucket keeps at now: a bucket whose state is at or below it
// is full. Floor(now) = now·A − C·P.
func (p Params) Floor(now int64) Int128 {
	return Mul(now, p.Amount).Sub(Mul(p.Capacity, p.Period))
}

// Full reports whether the bucket with state e is full at now.
func (p Params) Full(e Int128, now int64) bool { return !p.Floor(now).Less(e) }

// Level returns the millitokens available at now in a bucket with state e. It is at most the
// capacity and may be negative after adjustments.
func (p Params) Level(e Int128, now int64) int64 {
	lvl := Mul(now, p.Amount).Sub(e).FloorDiv(p.Period)
	return min(lvl, p.Capacity)
}

// Ceiling returns the highest state from which x millitokens can be taken at now:
// a bucket with state e ≤ Ceiling(now, x) has at least x available.
func (p Params) Ceiling(now, x int64) Int128 {
	return Mul(now, p.Amount).Sub(Mul(x, p.Period))
}

// Charge returns the state after x millitokens (which may be negative, a refund) are charged at
// now to a bucket with state e, clamping a full bucket first. It never refuses: see Take for the
// checked form.
func (p Params) Charge(e Int128, now, x int64) Int128 {
	if floor := p.Floor(now); e.Less(floor) {
		e = floor
	}
	return e.Add(Mul(x, p.Period))
}

// ChargeFull returns the state of a full bucket (or a new one) after x millitokens are charged
// at now: the level is then exactly C − x.
func (p Params) ChargeFull(now, x int64) Int128 {
	return p.Floor(now).Add(Mul(x, p.Period))
}

// Delta returns the change of state that charging x millitokens makes to a bucket that is not
// full: x·P.
func (p Params) Delta(x int64) Int128 { return Mul(x, p.Period) }

// Take takes x ≥ 0 millitokens at now from a bucket with state e. It reports whether the level
// allowed it, and returns the new state when it did (e unchanged otherwise).
func (p Params) Take(e Int128, now, x int64) (Int128, bool) {
	if p.Level(e, now) < x {
		return e, false
	}
	return p.Charge(e, now, x), true
}

// Wait returns how many milliseconds after now a bucket with state e will first have x
// millitokens available, 0 when it has them now. ok is false when x exceeds the capacity: no
// wait is long enough.
func (p Params) Wait(e Int128, now, x int64) (ms int64, ok bool) {
	if x > p.Capacity {
		return 0, false
	}
	if p.Level(e, now) >= x {
		return 0, true
	}
	// The first instant t with t·A − E ≥ x·P is ceil((E + x·P) / A).
	t := e.Add(Mul(x, p.Period)).CeilDiv(p.Amount)
	return max(t-now, 0), true
}

// Rebase converts the state e of a bucket kept with old parameters into the state under p that
// has the same level at now, capped at p's capacity. Rounding is down: a re-base never creates
// a token.
func (p Params) Rebase(old Params, e Int128, now int64) Int128 {
	lvl := min(old.Level(e, now), p.Capacity)
	return Mul(now, p.Amount).Sub(Mul(lvl, p.Period))
}
