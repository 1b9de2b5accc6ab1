package usage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// writeTPM writes n changes of consumed millitokens each to bucket k1/gpt-4's tpm, one a second
// from at, and returns the number of stream records made.
func writeTPM(t *testing.T, tbl *storage.Table, at time.Time, n int, consumed int64) int {
	t.Helper()
	p := params["tpm"]
	for i := range n {
		now := at.Add(time.Duration(i) * time.Second).UnixMilli()
		l := storage.LimitWrite{Name: "tpm", Mode: storage.Add, Params: p, Value: p.Delta(1), Consumed: consumed}
		if i == 0 {
			l = storage.LimitWrite{Name: "tpm", Mode: storage.SetFull, Params: p, Value: p.ChargeFull(now, 1), Floor: p.Floor(now), Consumed: consumed}
		}
		w := storage.BucketWrite{EntityID: "k1", Resource: "gpt-4", Now: now, Acquires: 1, Create: i == 0, Limits: []storage.LimitWrite{l}}
		if _, err := tbl.WriteBuckets(context.Background(), []storage.BucketWrite{w}, storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestCountersBeyond64Bits: a bucket's running counter and a window's total beyond 2^63
// millitokens are counted exactly, from the table's real stream to the query (it used to skip
// every later record of the bucket as malformed, and break every query page holding it).
func TestCountersBeyond64Bits(t *testing.T) {
	client := ddbtest.Client(t)
	src := ddbtest.NewTable(t, client)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	const each = 6_000_000_000_000_000_000 // millitokens per write; three pass 2^63
	n := writeTPM(t, src, at, 3, each)
	agg, tbl := newAggregator(t)
	for _, b := range capture(t, src.Name(), n, 100) {
		if failed := deliver(t, agg, b); len(failed) > 0 {
			t.Fatalf("failed: %v", failed)
		}
	}
	if s := agg.Stats(); s.Malformed != 0 || s.Applied != 3 {
		t.Fatalf("stats %+v", s)
	}
	b, err := src.GetBucket(context.Background(), "k1", "gpt-4")
	if err != nil || b.Limits["tpm"].Consumed.String() != "18000000000000000000" || b.Version != at.UnixMilli()*storage.VersionBase+3 {
		t.Fatalf("bucket %+v %v", b, err)
	}
	r := usage.NewReader(tbl)
	for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
		p, err := r.QueryEntityUsage(context.Background(), "k1", "", w, at, at, 0, "")
		if err != nil || len(p.Snapshots) != 1 {
			t.Fatalf("%s: %+v %v", w, p, err)
		}
		s := p.Snapshots[0]
		if s.MilliCounters["tpm"].String() != "18000000000000000000" || s.Counters["tpm"].String() != "18000000000000000" || s.Acquires != 3 {
			t.Fatalf("%s snapshot %+v", w, s)
		}
	}
}

// TestVersionOrderAcrossShards: after a shard split, the child shard's records may carry lower
// sequence numbers than the parent's (AWS does not document their order across shards). The
// snapshot orders a bucket's records by the item's version, so nothing is taken for a
// duplicate and lost.
func TestVersionOrderAcrossShards(t *testing.T) {
	client := ddbtest.Client(t)
	src := ddbtest.NewTable(t, client)
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	n := writeTPM(t, src, at, 6, 1000)
	var all = capture(t, src.Name(), n, 100)[0]
	if len(all) != 6 {
		t.Fatalf("captured %d records in the first batch, want 6", len(all))
	}
	parent, child := all[:3], all[3:]
	// The child shard numbers its records below the parent's.
	for i := range child {
		child[i].Change.SequenceNumber = fmt.Sprint(100 + i)
	}
	for i := range parent {
		parent[i].Change.SequenceNumber = fmt.Sprint(900_000 + i)
	}
	agg, tbl := newAggregator(t)
	for _, b := range [][]int{{0, 3}, {3, 6}, {0, 6}} { // the parent, the child, then both again
		if failed := deliver(t, agg, all[b[0]:b[1]]); len(failed) > 0 {
			t.Fatalf("failed: %v", failed)
		}
	}
	p, err := usage.NewReader(tbl).QueryEntityUsage(context.Background(), "k1", "gpt-4", usage.Hourly, at, at, 0, "")
	if err != nil || len(p.Snapshots) != 1 || p.Snapshots[0].MilliCounters["tpm"] != tokenbucket.I128(6000) || p.Snapshots[0].Acquires != 6 {
		t.Fatalf("snapshot after a split: %+v %v", p, err)
	}
	if s := agg.Stats(); s.Applied != 6 || s.Duplicates != 6 {
		t.Fatalf("stats %+v", s)
	}
}
