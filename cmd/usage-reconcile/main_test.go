package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// TestReconcileCommand: a bucket with two changes in one hour whose snapshots hold only the
// first (the second was given up): the command reports the difference, writes nothing with
// -dry-run, and repairs both windows without it.
func TestReconcileCommand(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddbtest.Endpoint(t))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")

	hour := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	p := tokenbucket.Params{Capacity: 10_000_000, Amount: 10_000_000, Period: 60_000}
	var first *storage.Bucket
	for i, consumed := range []int64{2000, 3000} {
		now := hour.Add(time.Duration(i+1) * time.Minute).UnixMilli()
		l := storage.LimitWrite{Name: "tpm", Mode: storage.Add, Params: p, Value: p.Delta(consumed), Consumed: consumed}
		if i == 0 {
			l = storage.LimitWrite{Name: "tpm", Mode: storage.SetFull, Params: p, Value: p.ChargeFull(now, consumed), Floor: p.Floor(now), Consumed: consumed}
		}
		got, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{{EntityID: "k1", Resource: "gpt-4", Now: now, Acquires: 1, Create: i == 0, Limits: []storage.LimitWrite{l}}}, storage.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got[0]
		}
	}
	// The aggregator applied the first change only.
	for _, w := range storage.Windows() {
		err := tbl.AddUsage(ctx, storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: w, WindowStart: w.Start(first.UpdatedAt),
			Counters: map[string]tokenbucket.Int128{"tpm": tokenbucket.I128(2000)}, Acquires: 1,
			FirstVersion: first.Version, LastVersion: first.Version, LastAt: first.UpdatedAt,
			Totals: map[string]tokenbucket.Int128{"tpm": first.Limits["tpm"].Consumed}, TotalAcquires: 1, Expires: 1, Create: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	type printed struct {
		Window  string `json:"window"`
		Changed bool   `json:"changed"`
		Written bool   `json:"written"`
		Was     struct {
			MilliCounters map[string]json.Number `json:"milli_counters"`
		} `json:"was"`
		Now struct {
			MilliCounters map[string]json.Number `json:"milli_counters"`
			Acquires      int64                  `json:"acquires"`
		} `json:"now"`
	}
	runCmd := func(args ...string) []printed {
		t.Helper()
		var out bytes.Buffer
		args = append([]string{"-table", tbl.Name(), "-entity", "k1", "-resource", "gpt-4", "-day", "2026-11-26"}, args...)
		if err := run(ctx, args, os.Getenv, &out); err != nil {
			t.Fatalf("run %v: %v\n%s", args, err, out.String())
		}
		var lines []printed
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var p printed
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			lines = append(lines, p)
		}
		return lines
	}
	for _, l := range runCmd("-dry-run") {
		if !l.Changed || l.Written || l.Was.MilliCounters["tpm"] != "2000" || l.Now.MilliCounters["tpm"] != "5000" || l.Now.Acquires != 2 {
			t.Fatalf("dry run: %+v", l)
		}
	}
	lines := runCmd()
	if len(lines) != 2 || lines[0].Window != "hourly" || lines[1].Window != "daily" || !lines[0].Written || !lines[1].Written {
		t.Fatalf("reconcile: %+v", lines)
	}
	for _, l := range runCmd() {
		if l.Changed || l.Written || l.Was.MilliCounters["tpm"] != "5000" {
			t.Fatalf("second run: %+v", l)
		}
	}
	// Bad arguments are errors, not panics.
	for _, args := range [][]string{{"-day", "yesterday"}, {"-entity", ""}, {"extra"}} {
		full := append([]string{"-table", tbl.Name(), "-entity", "k1", "-resource", "gpt-4", "-day", "2026-11-26"}, args...)
		if err := run(ctx, full, os.Getenv, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
