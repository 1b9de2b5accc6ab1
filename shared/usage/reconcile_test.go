package usage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// writeChanges writes one change of bucket k1/gpt-4's tpm per time, consuming the amount at the
// same index (millitokens), each with one acquire.
func writeChanges(t *testing.T, tbl *storage.Table, times []time.Time, consumed []int64) {
	t.Helper()
	p := params["tpm"]
	for i, at := range times {
		now := at.UnixMilli()
		l := storage.LimitWrite{Name: "tpm", Mode: storage.Add, Params: p, Value: p.Delta(1), Consumed: consumed[i]}
		if i == 0 {
			l = storage.LimitWrite{Name: "tpm", Mode: storage.SetFull, Params: p, Value: p.ChargeFull(now, 1), Floor: p.Floor(now), Consumed: consumed[i]}
		}
		w := storage.BucketWrite{EntityID: "k1", Resource: "gpt-4", Now: now, Acquires: 1, Create: i == 0, Limits: []storage.LimitWrite{l}}
		if _, err := tbl.WriteBuckets(context.Background(), []storage.BucketWrite{w}, storage.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// usageOf returns the tpm millitokens and acquires of every snapshot of k1/gpt-4, keyed
// "window hh" (hh the hour, "daily" for the day).
func usageOf(t *testing.T, tbl *storage.Table, day time.Time) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	r := usage.NewReader(tbl)
	for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
		p, err := r.QueryEntityUsage(context.Background(), "k1", "gpt-4", w, day, day.Add(24*time.Hour-time.Millisecond), 0, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Snapshots {
			k := "daily"
			if w == usage.Hourly {
				k = s.WindowStart.Format("15")
			}
			m, _ := s.MilliCounters["tpm"].Int64()
			out[k] = [2]int64{m, s.Acquires}
		}
	}
	return out
}

// TestReconcileAfterLostRecords: records given up by the event source mapping leave the
// snapshots short; Reconcile recomputes them from the running totals, exactly within the day;
// a record lost as the last change of its hour is counted in the next hour with a change. A
// late replay of the lost records then adds nothing, and a second run changes nothing.
func TestReconcileAfterLostRecords(t *testing.T) {
	ctx := context.Background()
	client := ddbtest.Client(t)
	src := ddbtest.NewTable(t, client)
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	times := []time.Time{day.Add(-30 * time.Minute), at(10, 5), at(10, 20), at(11, 10), at(11, 50), at(12, 30)}
	writeChanges(t, src, times, []int64{1000, 2000, 3000, 4000, 5000, 6000})
	records := capture(t, src.Name(), len(times), 100)[0]
	agg := usage.NewAggregator(src, usage.Config{})
	var kept, lost []events.DynamoDBEventRecord
	for i, r := range records {
		if i == 1 || i == 4 { // 10:05 (within its hour) and 11:50 (the last of its hour)
			lost = append(lost, r)
		} else {
			kept = append(kept, r)
		}
	}
	if failed := deliver(t, agg, kept); len(failed) > 0 {
		t.Fatal(failed)
	}
	before := usageOf(t, src, day)
	if before["10"] != [2]int64{3000, 1} || before["daily"] != [2]int64{13000, 3} {
		t.Fatalf("before: %v", before)
	}

	rec := usage.NewReconciler(src, 0)
	dry, err := rec.Reconcile(ctx, "k1", "gpt-4", at(15, 0), true)
	if err != nil || dry.Base != "snapshot" || len(dry.Windows) != 4 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if again := usageOf(t, src, day); again["daily"] != before["daily"] {
		t.Fatalf("a dry run wrote: %v", again)
	}
	got, err := rec.Reconcile(ctx, "k1", "gpt-4", day, false)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{}
	for _, f := range got.Windows {
		changed[string(f.Window)+f.WindowStart.Format(" 15")] = f.Changed
	}
	want := map[string][2]int64{"10": {5000, 2}, "11": {4000, 1}, "12": {11000, 2}, "daily": {20000, 5}}
	after := usageOf(t, src, day)
	if len(after) != len(want) {
		t.Fatalf("after: %v, want %v", after, want)
	}
	for k, v := range want {
		if after[k] != v {
			t.Errorf("%s: %v, want %v (all: %v)", k, after[k], v, after)
		}
	}
	if !changed["hourly 10"] || changed["hourly 11"] || !changed["hourly 12"] || !changed["daily 00"] {
		t.Errorf("changed: %v", changed)
	}

	// The lost records replayed late are already counted.
	if failed := deliver(t, agg, lost); len(failed) > 0 {
		t.Fatal(failed)
	}
	if again := usageOf(t, src, day); len(again) != len(want) || again["daily"] != want["daily"] || again["12"] != want["12"] {
		t.Fatalf("after a late replay: %v", again)
	}
	second, err := rec.Reconcile(ctx, "k1", "gpt-4", day, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range second.Windows {
		if f.Changed {
			t.Errorf("second run changed %s %s: %+v -> %+v", f.Window, f.WindowStart, f.Was, f.Now)
		}
	}
}

// hooked calls before ahead of the first PutItem it forwards (the aggregator writing while a
// reconciliation runs) and, with lose, reports that put as failed after DynamoDB applied it (a
// reply that never came).
type hooked struct {
	*dynamodb.Client
	before func()
	lose   bool
	puts   int
}

func (h *hooked) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	h.puts++
	if h.puts == 1 && h.before != nil {
		h.before()
	}
	out, err := h.Client.PutItem(ctx, in, opts...)
	if h.puts == 1 && h.lose && err == nil {
		return nil, errors.New("injected: the response was lost after DynamoDB applied the write")
	}
	return out, err
}

// reconcileSetup writes two changes of k1/gpt-4 at 10:01 and 10:02 and the snapshots of the
// first only (the second was given up), and returns the table and the second change's bucket.
func reconcileSetup(t *testing.T, client *dynamodb.Client) (*storage.Table, *storage.Bucket) {
	t.Helper()
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, client)
	hour := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	writeChanges(t, tbl, []time.Time{hour.Add(time.Minute)}, []int64{2000})
	first, err := tbl.GetBucket(ctx, "k1", "gpt-4")
	if err != nil {
		t.Fatal(err)
	}
	p := params["tpm"]
	second, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{{EntityID: "k1", Resource: "gpt-4", Now: hour.Add(2 * time.Minute).UnixMilli(), Acquires: 1,
		Limits: []storage.LimitWrite{{Name: "tpm", Mode: storage.Add, Params: p, Value: p.Delta(1), Consumed: 3000}}}}, storage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range storage.Windows() {
		err := tbl.AddUsage(ctx, storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: w, WindowStart: w.Start(first.UpdatedAt),
			Counters: map[string]tokenbucket.Int128{"tpm": tokenbucket.I128(2000)}, Acquires: 1,
			FirstVersion: first.Version, LastVersion: first.Version, LastAt: first.UpdatedAt,
			Totals: map[string]tokenbucket.Int128{"tpm": first.Limits["tpm"].Consumed}, TotalAcquires: 1, Expires: 1, Create: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	return tbl, second[0]
}

// The aggregator writes a snapshot between the reconciliation's read and its write: the write's
// condition fails, nothing is overwritten, the error says to run again, and running again ends
// exact. A response lost after DynamoDB applied the write: the retry finds nothing to change.
func TestReconcileRaces(t *testing.T) {
	ctx := context.Background()
	client := ddbtest.Client(t)
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

	tbl, second := reconcileSetup(t, client)
	h := &hooked{Client: client}
	h.before = func() { // the second change arrives at the aggregator meanwhile
		w := storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly, WindowStart: storage.WindowHourly.Start(second.UpdatedAt),
			Counters: map[string]tokenbucket.Int128{"tpm": tokenbucket.I128(3000)}, Acquires: 1,
			FirstVersion: second.Version, LastVersion: second.Version, LastAt: second.UpdatedAt,
			Totals: map[string]tokenbucket.Int128{"tpm": second.Limits["tpm"].Consumed}, TotalAcquires: 2, Expires: 1}
		if err := tbl.AddUsage(ctx, w); err != nil {
			t.Error(err)
		}
	}
	_, err := usage.NewReconciler(storage.New(h, tbl.Name()), 0).Reconcile(ctx, "k1", "gpt-4", day, false)
	var conflict *storage.UsageConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "run again") {
		t.Fatalf("reconcile during an aggregator write: %v", err)
	}
	if _, err := usage.NewReconciler(tbl, 0).Reconcile(ctx, "k1", "gpt-4", day, false); err != nil {
		t.Fatal(err)
	}
	if got := usageOf(t, tbl, day); got["10"] != [2]int64{5000, 2} || got["daily"] != [2]int64{5000, 2} {
		t.Fatalf("after running again: %v", got)
	}

	tbl, _ = reconcileSetup(t, client)
	lost := &hooked{Client: client, lose: true}
	if _, err := usage.NewReconciler(storage.New(lost, tbl.Name()), 0).Reconcile(ctx, "k1", "gpt-4", day, false); err == nil {
		t.Fatal("a lost response was not reported")
	}
	again, err := usage.NewReconciler(tbl, 0).Reconcile(ctx, "k1", "gpt-4", day, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := usageOf(t, tbl, day); got["10"] != [2]int64{5000, 2} || got["daily"] != [2]int64{5000, 2} {
		t.Fatalf("after a lost response and a retry: %v %+v", got, again)
	}
}
