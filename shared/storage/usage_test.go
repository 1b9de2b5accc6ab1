package storage_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

func TestWindowStart(t *testing.T) {
	h, d := storage.WindowHourly, storage.WindowDaily
	for _, c := range []struct {
		w        storage.Window
		ms, want int64
	}{
		{h, 0, 0}, {h, 3_599_999, 0}, {h, 3_600_000, 3_600_000}, {h, -1, -3_600_000},
		{d, 86_399_999, 0}, {d, 86_400_000, 86_400_000}, {d, -86_400_000, -86_400_000}, {d, -86_400_001, -172_800_000},
	} {
		if got := c.w.Start(c.ms); got != c.want {
			t.Errorf("%s.Start(%d) = %d, want %d", c.w, c.ms, got, c.want)
		}
	}
	if s := storage.FormatWindowStart(1_795_000_000_000 - 1_795_000_000_000%3_600_000); s != "2026-11-18T11:00:00Z" {
		t.Errorf("FormatWindowStart = %s", s)
	}
	for _, v := range []int64{storage.MinUsageMillis, 0, storage.MaxUsageMillis - 999} {
		ms, err := storage.ParseWindowStart(storage.FormatWindowStart(v))
		if err != nil || ms != v {
			t.Errorf("round trip of %d: %d %v", v, ms, err)
		}
	}
	for _, bad := range []string{"", "2026-11-26T19:00:00+01:00", "2026-11-26T19:00:00.5Z", "2026-11-26 19:00:00Z"} {
		if _, err := storage.ParseWindowStart(bad); err == nil {
			t.Errorf("ParseWindowStart(%q) accepted", bad)
		}
	}
}

func TestPadSeq(t *testing.T) {
	a, _ := storage.PadSeq("999")
	b, _ := storage.PadSeq("1000")
	c, _ := storage.PadSeq("4000000000000000000000000000000000000001") // 40 digits
	if len(a) != storage.SeqWidth || !(a < b) || !(b < c) {
		t.Fatalf("padding does not order: %q %q %q", a, b, c)
	}
	for _, bad := range []string{"", "12a", "-1", "1e5", fmt.Sprintf("%049d", 1)} {
		if _, err := storage.PadSeq(bad); err == nil {
			t.Errorf("PadSeq(%q) accepted", bad)
		}
	}
}

func i128s(m map[string]int64) map[string]tokenbucket.Int128 {
	out := make(map[string]tokenbucket.Int128, len(m))
	for k, v := range m {
		out[k] = tokenbucket.I128(v)
	}
	return out
}

func TestAddUsageConditions(t *testing.T) {
	ctx := context.Background()
	meter := ddbtest.NewMeter()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t, meter.Option()))
	const hour = int64(1_795_000_000_000 / 3_600_000 * 3_600_000)
	w := storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly, WindowStart: hour,
		Counters: i128s(map[string]int64{"rpm": 1000, "tpm": 500_000}), Acquires: 1, FirstVersion: 10, LastVersion: 12, Expires: 1}

	// Updating a snapshot that does not exist fails and says so.
	var conflict *storage.UsageConflictError
	if err := tbl.AddUsage(ctx, w); !errors.As(err, &conflict) || conflict.Exists {
		t.Fatalf("update of a missing snapshot: %v", err)
	}
	// Create; creating again fails and returns the applied sequence number.
	w.Create = true
	if err := tbl.AddUsage(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := tbl.AddUsage(ctx, w); !errors.As(err, &conflict) || !conflict.Exists || conflict.AppliedVersion != 12 {
		t.Fatalf("second create: %v %+v", err, conflict)
	}
	// An update with records at or below the applied sequence number fails.
	w.Create = false
	w.FirstVersion, w.LastVersion = 12, 15
	if err := tbl.AddUsage(ctx, w); !errors.As(err, &conflict) || conflict.AppliedVersion != 12 {
		t.Fatalf("overlapping update: %v", err)
	}
	// Records above it apply, including a limit the window has not seen and a negative amount.
	meter.Reset()
	w.FirstVersion, w.LastVersion = 13, 15
	w.Counters = i128s(map[string]int64{"rpm": -1000, "new": 7})
	w.Acquires = -1
	if err := tbl.AddUsage(ctx, w); err != nil {
		t.Fatal(err)
	}
	if u := meter.Total(); u.Requests != 1 || u.TableWCU != 1 || u.IndexWCU != 1 {
		t.Errorf("one snapshot update cost %+v, want 1 request, 1 WCU + 1 index WCU", u)
	}
	// An update that only moves acquires (no counter) is a valid expression too.
	w.FirstVersion, w.LastVersion, w.Counters, w.Acquires = 16, 16, nil, 2
	if err := tbl.AddUsage(ctx, w); err != nil {
		t.Fatal(err)
	}
	page, err := tbl.QueryUsage(ctx, storage.UsageQuery{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly, From: hour, To: hour, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.UsageSnapshot{{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly, WindowStart: hour,
		Counters: i128s(map[string]int64{"rpm": 0, "tpm": 500_000, "new": 7}), Acquires: 2, Totals: map[string]tokenbucket.Int128{}}}
	if !reflect.DeepEqual(page.Snapshots, want) || page.Next != nil {
		t.Fatalf("snapshot %+v next %v, want %+v", page.Snapshots, page.Next, want)
	}
}

func TestQueryUsagePages(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	const h = int64(3_600_000)
	base := int64(1_795_000_000_000) / (24 * h) * (24 * h)
	type key struct {
		e, r string
		w    storage.Window
		at   int64
	}
	var all []key
	for _, e := range []string{"a", "b", "c"} {
		for _, r := range []string{"gpt-4", "llama"} {
			for i := int64(0); i < 5; i++ {
				all = append(all, key{e, r, storage.WindowHourly, base + i*h})
			}
			all = append(all, key{e, r, storage.WindowDaily, base})
		}
	}
	for i, k := range all {
		err := tbl.AddUsage(ctx, storage.UsageWrite{EntityID: k.e, Resource: k.r, Window: k.w, WindowStart: k.at,
			Counters: i128s(map[string]int64{"rpm": int64(i)}), Acquires: 1, FirstVersion: 1, LastVersion: 1, Create: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A bucket of the same resource has GSI2 keys too (R#llama / B#a); queries must skip it.
	_, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{{EntityID: "a", Resource: "llama", Now: base, Acquires: 1, Create: true,
		Limits: []storage.LimitWrite{{Name: "rpm", Mode: storage.SetFull, Params: rpm, Value: rpm.ChargeFull(base, 1000), Floor: rpm.Floor(base), Consumed: 1000}}}},
		storage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// collect pages through every query shape with a small limit.
	collect := func(q storage.UsageQuery) (out []key, pages int) {
		for {
			p, err := tbl.QueryUsage(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range p.Snapshots {
				out = append(out, key{s.EntityID, s.Resource, s.Window, s.WindowStart})
			}
			if p.Next == nil {
				return out, pages
			}
			q.After = p.Next
		}
	}
	// Entity + resource: hours 1..3 of a/gpt-4, 2 per page.
	got, pages := collect(storage.UsageQuery{EntityID: "a", Resource: "gpt-4", Window: storage.WindowHourly, From: base + h, To: base + 3*h, Limit: 2})
	want := []key{{"a", "gpt-4", storage.WindowHourly, base + h}, {"a", "gpt-4", storage.WindowHourly, base + 2*h}, {"a", "gpt-4", storage.WindowHourly, base + 3*h}}
	if !reflect.DeepEqual(got, want) || pages != 2 {
		t.Errorf("entity+resource: %v in %d pages, want %v", got, pages, want)
	}
	// Entity, every resource, filtered by window and time: the daily snapshots of b.
	got, _ = collect(storage.UsageQuery{EntityID: "b", Window: storage.WindowDaily, From: base, To: base + 4*h, Limit: 1})
	want = []key{{"b", "gpt-4", storage.WindowDaily, base}, {"b", "llama", storage.WindowDaily, base}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entity: %v, want %v", got, want)
	}
	// Resource, every entity (GSI2): hour 4 of llama, in entity order; buckets on GSI2 are not read.
	got, _ = collect(storage.UsageQuery{Resource: "llama", Window: storage.WindowHourly, From: base + 4*h, To: base + 4*h, Limit: 2})
	want = []key{{"a", "llama", storage.WindowHourly, base + 4*h}, {"b", "llama", storage.WindowHourly, base + 4*h}, {"c", "llama", storage.WindowHourly, base + 4*h}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resource: %v, want %v", got, want)
	}
}
