package usage

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// DefaultRetention is how long a snapshot is kept after its window ends when Config.Retention
// is zero.
const DefaultRetention = 90 * 24 * time.Hour

// DefaultConcurrency is the number of snapshot writes in flight when Config.Concurrency is zero.
const DefaultConcurrency = 16

// maxConflicts bounds the failed conditions in a row on one snapshot. Each failure returns the
// item's state, so two are enough (a wrong create/update guess, then records already applied);
// more means something else writes the item, and the records are reported as failed.
const maxConflicts = 4

// Config configures an Aggregator.
type Config struct {
	// Retention is how long a snapshot is kept after its window ends: its ttl is the window's
	// end plus Retention (DefaultRetention when zero).
	Retention time.Duration
	// Concurrency is the number of snapshot writes in flight (DefaultConcurrency when zero).
	Concurrency int
	// Logger receives one line per batch and one per skipped or failed record (slog.Default()
	// when nil).
	Logger *slog.Logger
}

// Aggregator turns stream records of bucket items into usage snapshots. Its Handle method is a
// Lambda handler for the table's DynamoDB stream. It is safe for concurrent use.
type Aggregator struct {
	table       *storage.Table
	retention   time.Duration
	concurrency int
	log         *slog.Logger
	stats       stats
}

// NewAggregator returns an aggregator that writes snapshots to table.
func NewAggregator(table *storage.Table, cfg Config) *Aggregator {
	a := &Aggregator{table: table, retention: cfg.Retention, concurrency: cfg.Concurrency, log: cfg.Logger}
	if a.retention <= 0 {
		a.retention = DefaultRetention
	}
	if a.concurrency <= 0 {
		a.concurrency = DefaultConcurrency
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a
}

// Stats counts what an Aggregator did since it was created. Every record handed to it is
// counted in Records and in exactly one of the other record counts. A bucket change goes to
// both its hourly and its daily snapshot: it is Failed when it is reported for retry (it is at
// or after the first change a failed write needed), a Duplicate when both snapshots held it
// already (or it came twice in one batch), Applied otherwise.
type Stats struct {
	Records    int64 // records handed to Handle
	Applied    int64 // bucket changes added to a snapshot by this call
	Duplicates int64 // bucket changes already held (a re-delivery): nothing added
	NotBucket  int64 // records of other items, skipped
	Removed    int64 // bucket deletions, skipped: a deletion consumes nothing
	Unchanged  int64 // bucket writes that changed no counter, skipped
	Malformed  int64 // bucket records that cannot be read, skipped and logged
	Failed     int64 // bucket changes reported for retry (BatchItemFailures)
	Writes     int64 // UpdateItem requests, including those whose condition failed
}

type stats struct {
	records, applied, duplicates, notBucket, removed, unchanged, malformed, failed, writes atomic.Int64
}

// Stats returns the counts so far.
func (a *Aggregator) Stats() Stats {
	s := &a.stats
	return Stats{
		Records: s.records.Load(), Applied: s.applied.Load(), Duplicates: s.duplicates.Load(),
		NotBucket: s.notBucket.Load(), Removed: s.removed.Load(), Unchanged: s.unchanged.Load(),
		Malformed: s.malformed.Load(), Failed: s.failed.Load(), Writes: s.writes.Load(),
	}
}

type groupKey struct {
	entity, resource string
	window           storage.Window
	start            int64
}

// group is the run of changes of one bucket item that fall in one snapshot.
type group struct {
	key     groupKey
	changes []Change // in version order
	// outcome, set by apply
	dups       []string // PaddedSeq of the changes the snapshot held already
	failedFrom *Change  // the first change not applied when err is set
	err        error
}

// batch is one Handle call's records, read and grouped by snapshot.
type batch struct {
	groups []*group // by first change, then window
	// records by what they are (see Stats)
	notBucket, removed, unchanged, malformed, changes, dups int64
}

// Handle processes one batch of stream records (one shard's, in stream order, as Lambda
// delivers them) and returns the records to retry.
//
// Each bucket change is folded into the hourly and the daily snapshot of its entity, resource
// and write time; each snapshot touched is one conditional UpdateItem (see storage.AddUsage),
// run Config.Concurrency at a time. Handle never returns an error: a write that fails is
// reported through BatchItemFailures, so that only the records from the first failed one on are
// delivered again. Records that are not bucket changes, removals and malformed records are
// skipped, never reported.
func (a *Aggregator) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	began := time.Now()
	b := a.read(ctx, ev.Records)
	writes := a.writeAll(ctx, b.groups)
	first := a.firstFailure(ctx, b.groups)
	retryFrom, retrySeq := "", ""
	if first != nil {
		retryFrom, retrySeq = first.PaddedSeq, first.Seq
	}
	resp := failuresFrom(ev.Records, retryFrom)
	applied, dups, failed := b.outcome(retryFrom)

	s := &a.stats
	s.records.Add(int64(len(ev.Records)))
	s.applied.Add(applied)
	s.duplicates.Add(dups)
	s.notBucket.Add(b.notBucket)
	s.removed.Add(b.removed)
	s.unchanged.Add(b.unchanged)
	s.malformed.Add(b.malformed)
	s.failed.Add(failed)
	s.writes.Add(writes)
	level := slog.LevelInfo
	if failed > 0 {
		level = slog.LevelWarn
	}
	a.log.Log(ctx, level, "usage batch",
		"records", len(ev.Records), "bucket_changes", b.changes, "applied", applied, "duplicates", dups,
		"not_bucket", b.notBucket, "removed", b.removed, "unchanged", b.unchanged, "malformed", b.malformed,
		"failed", failed, "snapshots", len(b.groups), "writes", writes,
		"retry_from", retrySeq, "duration_ms", time.Since(began).Milliseconds())
	return resp, nil
}

// read parses the records and groups the bucket changes by snapshot: each change goes to the
// group of every window.
func (a *Aggregator) read(ctx context.Context, records []events.DynamoDBEventRecord) *batch {
	b := &batch{}
	groups := map[groupKey]*group{}
	seen := make(map[string]bool, len(records))
	for _, r := range records {
		c, ok := a.parse(ctx, r, b)
		if !ok {
			continue
		}
		if seen[c.PaddedSeq] {
			// The same record twice in one batch: sequence numbers are unique in a stream.
			b.dups++
			continue
		}
		seen[c.PaddedSeq] = true
		b.changes++
		for _, w := range storage.Windows() {
			k := groupKey{entity: c.EntityID, resource: c.Resource, window: w, start: w.Start(c.At)}
			g := groups[k]
			if g == nil {
				g = &group{key: k}
				groups[k] = g
				b.groups = append(b.groups, g)
			}
			g.changes = append(g.changes, c)
		}
	}
	for _, g := range b.groups {
		slices.SortStableFunc(g.changes, func(x, y Change) int { return cmp.Compare(x.Version, y.Version) })
	}
	slices.SortFunc(b.groups, func(x, y *group) int {
		if c := cmp.Compare(x.changes[0].PaddedSeq, y.changes[0].PaddedSeq); c != 0 {
			return c
		}
		return cmp.Compare(x.key.window.Millis(), y.key.window.Millis())
	})
	return b
}

// parse reads one record; it counts and logs a record that carries no change and returns false.
func (a *Aggregator) parse(ctx context.Context, r events.DynamoDBEventRecord, b *batch) (Change, bool) {
	c, err := ParseRecord(r)
	var bad *MalformedError
	switch {
	case errors.Is(err, ErrNotBucket):
		b.notBucket++
	case errors.Is(err, ErrRemoved):
		b.removed++
	case errors.As(err, &bad):
		b.malformed++
		// The reason and the record's identity only: images may be large and are not logs.
		a.log.WarnContext(ctx, "skipping malformed bucket record",
			"event_id", r.EventID, "sequence_number", r.Change.SequenceNumber,
			"event_name", r.EventName, "reason", bad.Reason)
	case err != nil: // ParseRecord returns no other errors; be safe anyway
		b.malformed++
		a.log.WarnContext(ctx, "skipping unreadable record", "event_id", r.EventID, "error", err.Error())
	case c.Zero():
		b.unchanged++
	default:
		return c, true
	}
	return Change{}, false
}

// writeAll applies every group, Config.Concurrency at a time, and returns the requests made.
func (a *Aggregator) writeAll(ctx context.Context, groups []*group) int64 {
	var writes atomic.Int64
	sem := make(chan struct{}, a.concurrency)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			writes.Add(a.apply(ctx, g))
		}()
	}
	wg.Wait()
	return writes.Load()
}

// firstFailure logs every failed group and returns the change of the lowest sequence number
// from which records must be retried (nil when none failed).
func (a *Aggregator) firstFailure(ctx context.Context, groups []*group) *Change {
	var lowest *Change
	for _, g := range groups {
		if g.err == nil {
			continue
		}
		a.log.ErrorContext(ctx, "usage snapshot write failed",
			"entity_id", g.key.entity, "resource", g.key.resource, "window", string(g.key.window),
			"window_start", storage.FormatWindowStart(g.key.start),
			"first_sequence_number", g.failedFrom.Seq, "records", len(g.changes), "error", g.err.Error())
		if lowest == nil || g.failedFrom.PaddedSeq < lowest.PaddedSeq {
			lowest = g.failedFrom
		}
	}
	return lowest
}

// failuresFrom reports every record at or after the padded sequence number from.
//
// Lambda checkpoints at the lowest sequence number reported and delivers every record from it
// on again, whatever else is listed; the records before it are done. Reporting the first failed
// record and every record after it says exactly that, and stays right for a runtime that
// retries only the records listed (the local poller does the same). The records after it that
// did succeed come back too; their snapshots hold them already, so the re-delivery adds nothing.
func failuresFrom(records []events.DynamoDBEventRecord, from string) events.DynamoDBEventResponse {
	var resp events.DynamoDBEventResponse
	if from == "" {
		return resp
	}
	for _, r := range records {
		p, err := storage.PadSeq(r.Change.SequenceNumber)
		if err == nil && p >= from {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
		}
	}
	return resp
}

// outcome counts each change once: failed when it is to be retried (at or after retryFrom),
// duplicate when every window held it already, applied otherwise.
func (b *batch) outcome(retryFrom string) (applied, dups, failed int64) {
	held := map[string]int{}
	for _, g := range b.groups {
		for _, seq := range g.dups {
			held[seq]++
		}
	}
	dups = b.dups
	for _, g := range b.groups {
		if g.key.window != storage.WindowHourly { // every change has exactly one hourly group
			continue
		}
		for _, c := range g.changes {
			switch {
			case retryFrom != "" && c.PaddedSeq >= retryFrom:
				failed++
			case held[c.PaddedSeq] == len(storage.Windows()):
				dups++
			default:
				applied++
			}
		}
	}
	return applied, dups, failed
}

// apply writes g's changes to their snapshot and returns the number of requests made. It sets
// g.dups, and on failure g.err and g.failedFrom.
//
// The first write guesses whether the snapshot exists: it does when the bucket's previous write
// (the old image's ts) fell in the same window, since that write created it. A wrong guess, or
// a snapshot that holds some of the changes already, fails the write's condition; the error
// carries the snapshot's state and the next write uses it.
func (a *Aggregator) apply(ctx context.Context, g *group) int64 {
	k := g.key
	first := g.changes[0]
	create := first.PrevAt == 0 || k.window.Start(first.PrevAt) != k.start
	pending := g.changes
	var requests int64
	conflicts := 0
	for len(pending) > 0 {
		n, counters, acquires := fold(pending)
		last := pending[n-1]
		w := storage.UsageWrite{
			EntityID: k.entity, Resource: k.resource, Window: k.window, WindowStart: k.start,
			Counters: counters, Acquires: acquires,
			FirstVersion: pending[0].Version, LastVersion: last.Version,
			LastAt: last.At, Totals: last.Totals, TotalAcquires: last.TotalAcquires,
			Expires: (k.start+k.window.Millis())/1000 + int64(a.retention/time.Second),
			Create:  create,
		}
		requests++
		err := a.table.AddUsage(ctx, w)
		if err == nil {
			pending = pending[n:]
			create, conflicts = false, 0
			continue
		}
		var c *storage.UsageConflictError
		if !errors.As(err, &c) || conflicts+1 >= maxConflicts {
			g.err, g.failedFrom = err, &pending[0]
			return requests
		}
		conflicts++
		create = !c.Exists
		if c.Exists {
			// The snapshot holds every change up to its applied version: drop those.
			held := 0
			for held < len(pending) && pending[held].Version <= c.AppliedVersion {
				g.dups = append(g.dups, pending[held].PaddedSeq)
				held++
			}
			pending = pending[held:]
		}
	}
	return requests
}

// fold sums the longest prefix of changes whose sums fit (at least one change) and returns its
// length and sums. Counters are summed in 128 bits, which only data no limiter wrote can
// overflow; splitting keeps even that exact, as consecutive writes of one snapshot.
func fold(changes []Change) (int, map[string]tokenbucket.Int128, int64) {
	counters := map[string]tokenbucket.Int128{}
	var acquires int64
	for i, c := range changes {
		next := make(map[string]tokenbucket.Int128, len(c.Counters))
		ok := true
		for name, d := range c.Counters {
			if next[name], ok = counters[name].AddChecked(d); !ok {
				break
			}
		}
		var acq int64
		if ok {
			acq, ok = add(acquires, c.Acquires)
		}
		if !ok && i > 0 {
			return i, counters, acquires
		}
		for name, v := range next {
			counters[name] = v
		}
		acquires = acq
	}
	return len(changes), counters, acquires
}
