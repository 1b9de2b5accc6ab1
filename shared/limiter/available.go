package limiter

import (
	"context"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// Available returns the whole tokens available now in every limit of the entity+resource,
// refill included (may be negative after adjustments). It consumes nothing: one strongly
// consistent read.
func (l *Limiter) Available(ctx context.Context, req AvailableRequest) (map[string]int64, error) {
	limits, b, now, err := l.look(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(limits))
	for _, lim := range limits {
		out[lim.Name] = floorDiv(params(lim).Level(state(lim, b, now), now), millis)
	}
	return out, nil
}

// TimeUntilAvailable returns how long until needed (whole tokens by limit name) will all be
// available, 0 when they are now. Asking for more than a limit's capacity is a
// *ValidationError: no wait is long enough.
func (l *Limiter) TimeUntilAvailable(ctx context.Context, req AvailableRequest, needed map[string]int64) (time.Duration, error) {
	if len(needed) == 0 {
		return 0, invalid("needed", "name at least one limit")
	}
	limits, b, now, err := l.look(ctx, req)
	if err != nil {
		return 0, err
	}
	var wait int64
	for name, n := range needed {
		lim, ok := findLimit(limits, name)
		if !ok {
			return 0, invalid("needed."+name, "entity %s has no limit %q for %s", req.EntityID, name, req.Resource)
		}
		if n < 0 || n > lim.Capacity {
			return 0, invalid("needed."+name, "must be 0 to the capacity %d, got %d", lim.Capacity, n)
		}
		ms, _ := params(lim).Wait(state(lim, b, now), now, n*millis)
		wait = max(wait, ms)
	}
	return msDuration(wait), nil
}

// look resolves the limits and reads the bucket of an entity+resource.
func (l *Limiter) look(ctx context.Context, req AvailableRequest) ([]Limit, *storage.Bucket, int64, error) {
	if err := validateIDs(req.EntityID, req.Resource); err != nil {
		return nil, nil, 0, err
	}
	if err := validateLimits(req.Limits); err != nil {
		return nil, nil, 0, err
	}
	limits := req.Limits
	if req.UseStoredLimits {
		stored, err := l.resolveLimits(ctx, []string{req.EntityID}, req.Resource)
		if err != nil {
			return nil, nil, 0, err
		}
		if s := stored[req.EntityID]; s != nil {
			limits = s
		}
	}
	if len(limits) == 0 {
		return nil, nil, 0, invalid("limits", "give the limits to look at, or store some")
	}
	b, err := l.table.GetBucket(ctx, req.EntityID, req.Resource)
	if err != nil {
		return nil, nil, 0, &UnavailableError{Op: "get bucket", Err: err}
	}
	now := l.nowMs()
	// Limits changed since the bucket was written are re-based once, in the table (one write
	// per change), so that every later look and acquire refills at the new rate.
	b = l.rebase(ctx, req.Resource, req.EntityID, limits, b, now)
	l.buckets.put(bucketID{req.EntityID, req.Resource}, b)
	return limits, b, now, nil
}
