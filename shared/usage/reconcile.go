package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Reconciler recomputes a bucket's usage snapshots from its running counters, after stream
// records were given up (see the package documentation, "Records given up on").
type Reconciler struct {
	table     *storage.Table
	retention time.Duration
}

// NewReconciler returns a reconciler of the snapshots in table; retention is the snapshots'
// retention (DefaultRetention when zero), which sets the ttl of the snapshots it writes.
func NewReconciler(table *storage.Table, retention time.Duration) *Reconciler {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Reconciler{table: table, retention: retention}
}

// WindowFix is what reconciliation found for one snapshot.
type WindowFix struct {
	Window      Window
	WindowStart time.Time // UTC
	// Was is the snapshot as stored (nil when there was none); Now is what it should hold.
	Was, Now *Snapshot
	// Changed reports whether the counters or acquires differ (and, unless a dry run, were
	// written).
	Changed bool

	was, now *storage.UsageSnapshot // as stored and as computed
}

// Reconciliation is the outcome of Reconcile: one WindowFix per window of the day that has
// usage, hours first, then the day.
type Reconciliation struct {
	EntityID, Resource string
	Day                time.Time // 00:00 UTC
	Windows            []WindowFix
	// Base says where the running totals before the day came from: "snapshot" (the last
	// snapshot before the day), "none" (no usage before the day: they are 0) or
	// "first-hour" (no snapshot before the day is left: the day's first hour keeps its stored
	// counters, and the totals before it are derived from them).
	Base string
}

// observation is the bucket's running totals as of one version.
type observation struct {
	version, at int64
	totals      map[string]tokenbucket.Int128
	acquires    int64
}

// Reconcile recomputes the hourly snapshots of entity on resource for the UTC day that contains
// day, and the day's daily snapshot, from the running totals the snapshots keep and the bucket
// item's own (see the package documentation): a window's usage is the running total as of its
// last change less the running total as of the last change before it. With dryRun it writes
// nothing. Each write is conditional on the snapshot being as read; one the aggregator changed
// meanwhile is an error, and running Reconcile again is safe. Writes: one PutItem per changed
// snapshot (at most 25); reads: 3 Query and 1 GetItem.
func (r *Reconciler) Reconcile(ctx context.Context, entity, resource string, day time.Time, dryRun bool) (*Reconciliation, error) {
	if err := storage.ValidateID(entity); err != nil {
		return nil, invalid(ArgEntity, "%v", err)
	}
	if err := storage.ValidateID(resource); err != nil {
		return nil, invalid(ArgResource, "%v", err)
	}
	start := Daily.Start(day.UnixMilli())
	end := start + Daily.Millis() - 1
	out := &Reconciliation{EntityID: entity, Resource: resource, Day: time.UnixMilli(start).UTC()}
	hours, daily, bucket, err := r.read(ctx, entity, resource, start, end)
	if err != nil {
		return nil, err
	}
	ends := lastPerHour(hours, daily, bucket, start, end)
	if len(ends) == 0 {
		return out, nil
	}
	base, how, err := r.base(ctx, entity, resource, start, hours, ends)
	if err != nil {
		return nil, err
	}
	out.Base = how
	stored := map[int64]storage.UsageSnapshot{}
	for _, s := range hours {
		stored[s.WindowStart] = s
	}
	// Every version up to the highest seen is counted in some window of the day now: a record
	// of them replayed later must be taken as applied by every window, not only by the one
	// whose change it is (its usage may have been counted in the next hour).
	var watermark int64
	for _, o := range ends {
		watermark = max(watermark, o.version)
	}
	prev := base
	var last observation
	for h := start; h <= end; h += Hourly.Millis() {
		o, ok := ends[h]
		if !ok {
			continue
		}
		out.Windows = append(out.Windows, r.fix(Hourly, entity, resource, h, prev, o, watermark, stored))
		prev, last = o, o
	}
	stored = map[int64]storage.UsageSnapshot{}
	for _, s := range daily {
		stored[s.WindowStart] = s
	}
	out.Windows = append(out.Windows, r.fix(Daily, entity, resource, start, base, last, watermark, stored))
	if dryRun {
		return out, nil
	}
	for _, f := range out.Windows {
		if err := r.write(ctx, f); err != nil {
			return out, err
		}
	}
	return out, nil
}

// read returns the day's hourly and daily snapshots and the bucket item, refusing snapshots
// that hold no running totals (written before bucket versions).
func (r *Reconciler) read(ctx context.Context, entity, resource string, start, end int64) (hours, daily []storage.UsageSnapshot, b *storage.Bucket, err error) {
	if hours, err = r.table.ReadUsage(ctx, entity, resource, Hourly, start, end, false, 0); err != nil {
		return nil, nil, nil, err
	}
	if daily, err = r.table.ReadUsage(ctx, entity, resource, Daily, start, start, false, 1); err != nil {
		return nil, nil, nil, err
	}
	if b, err = r.table.GetBucket(ctx, entity, resource); err != nil {
		return nil, nil, nil, err
	}
	for _, s := range append(hours[:len(hours):len(hours)], daily...) {
		if s.AppliedVersion == 0 || s.TotalsVersion == 0 {
			return nil, nil, nil, fmt.Errorf("usage: reconcile %s/%s: the %s snapshot of %s was written before bucket versions and holds no running totals",
				entity, resource, s.Window, storage.FormatWindowStart(s.WindowStart))
		}
	}
	return hours, daily, b, nil
}

// lastPerHour returns, per hour of [start, end] that saw a change, the observation of the
// highest version whose change happened in it: from the snapshots of the day (each knows the
// totals as of its last change) and the bucket item.
func lastPerHour(hours, daily []storage.UsageSnapshot, b *storage.Bucket, start, end int64) map[int64]observation {
	ends := map[int64]observation{}
	add := func(o observation) {
		if o.version == 0 || o.at < start || o.at > end {
			return
		}
		h := Hourly.Start(o.at)
		if cur, ok := ends[h]; !ok || o.version > cur.version {
			ends[h] = o
		}
	}
	for _, s := range append(hours[:len(hours):len(hours)], daily...) {
		add(observation{version: s.TotalsVersion, at: s.AppliedAt, totals: s.Totals, acquires: s.TotalAcquires})
	}
	totals := make(map[string]tokenbucket.Int128, len(b.Limits))
	for name, l := range b.Limits {
		totals[name] = l.Consumed
	}
	add(observation{version: b.Version, at: b.UpdatedAt, totals: totals, acquires: b.Acquires})
	return ends
}

// base returns the running totals as of the last change before start and where they came from.
func (r *Reconciler) base(ctx context.Context, entity, resource string, start int64, hours []storage.UsageSnapshot, ends map[int64]observation) (observation, string, error) {
	var best observation
	for _, w := range storage.Windows() {
		before, err := r.table.ReadUsage(ctx, entity, resource, w, storage.MinUsageMillis, start-1, true, 1)
		if err != nil {
			return observation{}, "", err
		}
		if len(before) == 1 && before[0].TotalsVersion > best.version {
			s := before[0]
			best = observation{version: s.TotalsVersion, at: s.AppliedAt, totals: s.Totals, acquires: s.TotalAcquires}
		}
	}
	if best.version != 0 {
		return best, "snapshot", nil
	}
	// No snapshot before the day. When the day's first hour with a change has a snapshot, the
	// totals before the day are that snapshot's totals less what it holds.
	first := int64(-1)
	for h := range ends {
		if first < 0 || h < first {
			first = h
		}
	}
	for _, s := range hours {
		if s.WindowStart != first {
			continue
		}
		b := observation{totals: map[string]tokenbucket.Int128{}, acquires: s.TotalAcquires - s.Acquires}
		for name, v := range s.Totals {
			b.totals[name] = v.Sub(s.Counters[name])
		}
		if b.acquires == 0 && allZero(b.totals) {
			return observation{}, "none", nil
		}
		return b, "first-hour", nil
	}
	return observation{}, "none", nil
}

func allZero(m map[string]tokenbucket.Int128) bool {
	for _, v := range m {
		if v.Sign() != 0 {
			return false
		}
	}
	return true
}

// fix computes what the snapshot of window w starting at ws must hold: end − prev.
func (r *Reconciler) fix(w Window, entity, resource string, ws int64, prev, end observation, watermark int64, stored map[int64]storage.UsageSnapshot) WindowFix {
	f := WindowFix{Window: w, WindowStart: time.UnixMilli(ws).UTC()}
	now := storage.UsageSnapshot{EntityID: entity, Resource: resource, Window: w, WindowStart: ws,
		Counters: map[string]tokenbucket.Int128{}, Acquires: end.acquires - prev.acquires,
		AppliedVersion: watermark, TotalsVersion: end.version, AppliedAt: end.at, Totals: end.totals, TotalAcquires: end.acquires}
	for name, v := range end.totals {
		if d := v.Sub(prev.totals[name]); d.Sign() != 0 {
			now.Counters[name] = d
		}
	}
	f.now = &now
	f.Changed = true
	if s, ok := stored[ws]; ok {
		f.was = &s
		f.Changed = s.Acquires != now.Acquires || !sameCounters(s.Counters, now.Counters)
		// Keep the counters of limits the running totals no longer name (a limit dropped from
		// the bucket that consumed in the window): there is nothing to recompute them from.
		for name, v := range s.Counters {
			if _, ok := now.Totals[name]; !ok {
				now.Counters[name] = v
			}
		}
		was := toSnapshot(s)
		f.Was = &was
	}
	snap := toSnapshot(now)
	f.Now = &snap
	return f
}

// sameCounters compares counters, a limit absent on one side counting as 0.
func sameCounters(a, b map[string]tokenbucket.Int128) bool {
	for name, v := range a {
		if v != b[name] {
			return false
		}
	}
	for name, v := range b {
		if v != a[name] {
			return false
		}
	}
	return true
}

// write stores a changed window, on the condition that the snapshot is as read.
func (r *Reconciler) write(ctx context.Context, f WindowFix) error {
	if !f.Changed && f.was.AppliedVersion >= f.now.AppliedVersion {
		return nil
	}
	now := f.now
	expires := (now.WindowStart+now.Window.Millis())/1000 + int64(r.retention/time.Second)
	exists, expect := f.was != nil, int64(0)
	if exists {
		expect = f.was.AppliedVersion
	}
	err := r.table.PutUsage(ctx, *now, expires, exists, expect)
	var conflict *storage.UsageConflictError
	switch {
	case errors.As(err, &conflict):
		return fmt.Errorf("usage: reconcile %s/%s %s %s: the aggregator wrote the snapshot meanwhile, run again: %w",
			now.EntityID, now.Resource, now.Window, storage.FormatWindowStart(now.WindowStart), err)
	case err != nil:
		return fmt.Errorf("usage: reconcile %s/%s %s %s: %w", now.EntityID, now.Resource, now.Window, storage.FormatWindowStart(now.WindowStart), err)
	}
	return nil
}
