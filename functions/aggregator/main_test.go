package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/metrics"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// invoke runs a fixture through the Lambda runtime's JSON path, as the function would see it.
func invoke(t *testing.T, agg *usage.Aggregator, fixture string) events.DynamoDBEventResponse {
	t.Helper()
	payload, err := os.ReadFile("../../events/aggregator/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(agg.Handle).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("invoke %s: %v", fixture, err)
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

type snap struct {
	milli    map[string]int64
	acquires int64
}

// snapshots reads every snapshot of entity on resource, both windows, keyed "window start".
func snapshots(t *testing.T, r *usage.Reader, entity, resource string) map[string]snap {
	t.Helper()
	out := map[string]snap{}
	for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
		p, err := r.QueryEntityUsage(context.Background(), entity, resource, w, time.Time{}, time.Now().AddDate(5, 0, 0), 0, "")
		if err != nil || p.NextToken != "" {
			t.Fatalf("query: %v %q", err, p.NextToken)
		}
		for _, s := range p.Snapshots {
			out[string(w)+" "+s.WindowStart.Format(time.RFC3339)] = snap{milli64(s.MilliCounters), s.Acquires}
		}
	}
	return out
}

func TestFixtureBucketChanges(t *testing.T) {
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	agg := usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.DiscardHandler)})
	want := map[string]snap{
		// 19:59:59.999 counts in 19:00 although the stream saw it at 20:00:01.
		"hourly 2026-11-26T19:00:00Z": {map[string]int64{"rpm": 2000, "tpm": 550_000}, 2},
		"hourly 2026-11-26T20:00:00Z": {map[string]int64{"rpm": -1000, "tpm": -200_000}, -1}, // a rollback
		"hourly 2026-11-27T00:00:00Z": {map[string]int64{"rpm": 1000, "tpm": 10_000, "rpd": 1000}, 1},
		"daily 2026-11-26T00:00:00Z":  {map[string]int64{"rpm": 1000, "tpm": 350_000}, 1},
		"daily 2026-11-27T00:00:00Z":  {map[string]int64{"rpm": 1000, "tpm": 10_000, "rpd": 1000}, 1},
	}
	for i := 0; i < 2; i++ { // the second delivery is a re-delivery: nothing changes
		if resp := invoke(t, agg, "bucket-changes.json"); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("delivery %d: failures %v", i, resp.BatchItemFailures)
		}
		if got := snapshots(t, usage.NewReader(tbl), "k1", "gpt-4"); !reflect.DeepEqual(got, want) {
			t.Fatalf("delivery %d: snapshots\n%v\nwant\n%v", i, got, want)
		}
	}
	if s := agg.Stats(); s.Records != 10 || s.Applied != 5 || s.Duplicates != 5 || s.Writes != 10 {
		t.Errorf("stats %+v", s)
	}
}

func TestFixtureMixed(t *testing.T) {
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	var logs bytes.Buffer
	agg := usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if resp := invoke(t, agg, "mixed.json"); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v: skipped records must never be reported", resp.BatchItemFailures)
	}
	want := map[string]snap{
		// +1000 (seq 205), nothing (207), +500 with tpm dropped from the item, not refunded (208)
		"hourly 2026-11-26T19:00:00Z": {map[string]int64{"rpm": 1500}, 1},
		"daily 2026-11-26T00:00:00Z":  {map[string]int64{"rpm": 1500}, 1},
	}
	if got := snapshots(t, usage.NewReader(tbl), "k2", "gpt-4"); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshots %v, want %v", got, want)
	}
	if got := snapshots(t, usage.NewReader(tbl), "k2", "llama"); len(got) != 0 {
		t.Errorf("a REMOVE made snapshots %v", got)
	}
	s := agg.Stats()
	if s.NotBucket != 2 || s.Malformed != 2 || s.Removed != 1 || s.Unchanged != 1 || s.Applied != 2 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
	// Every line is JSON; malformed records are named, without their images.
	var malformed []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == "skipping malformed bucket record" {
			malformed = append(malformed, m)
		}
	}
	if len(malformed) != 2 || malformed[0]["sequence_number"] != "100000000000000000203" || malformed[1]["sequence_number"] != "100000000000000000204" {
		t.Fatalf("malformed log lines: %v", malformed)
	}
	if strings.Contains(logs.String(), "lots") || strings.Contains(logs.String(), "GSI2PK") {
		t.Errorf("logs carry record bodies: %s", logs.String())
	}
}

func TestRetentionFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if d, err := retentionFromEnv(env(map[string]string{"SNAPSHOT_RETENTION_DAYS": "30"})); err != nil || d != 30*24*time.Hour {
		t.Fatalf("30 days: %s %v", d, err)
	}
	if d, err := retentionFromEnv(env(nil)); err != nil || d != usage.DefaultRetention {
		t.Fatalf("default: %s %v", d, err)
	}
	for _, bad := range []string{"0", "ninety", "-3", "36501"} {
		if _, err := retentionFromEnv(env(map[string]string{"SNAPSHOT_RETENTION_DAYS": bad})); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// Each batch writes one EMF line of what it did.
func TestBatchMetrics(t *testing.T) {
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	quiet := slog.New(slog.DiscardHandler)
	agg := usage.NewAggregator(tbl, usage.Config{Logger: quiet})
	var out bytes.Buffer
	clock := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(250 * time.Millisecond); return clock }
	h := lambda.NewHandler(withMetrics(agg, metrics.New(&out, ""), "zl-aggregator", quiet, now))
	for _, fixture := range []string{"mixed.json", "mixed.json"} {
		payload, err := os.ReadFile("../../events/aggregator/" + fixture)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Invoke(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	// mixed.json: 8 records, 2 bucket changes applied, 2 malformed; the second delivery applies
	// nothing and finds the same 2 malformed records.
	for i, want := range []map[string]any{
		{"Records": 8.0, "UsageApplied": 2.0, "UsageDuplicates": 0.0, "MalformedRecords": 2.0, "RecordsRetried": 0.0, "BatchLatency": 250.0},
		{"Records": 8.0, "UsageApplied": 0.0, "UsageDuplicates": 2.0, "MalformedRecords": 2.0, "RecordsRetried": 0.0, "BatchLatency": 250.0},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("batch %d: %s = %v, want %v\n%s", i, k, m[k], v, lines[i])
			}
		}
		if m["FunctionName"] != "zl-aggregator" || m["SnapshotWrites"].(float64) < 2 {
			t.Errorf("batch %d: %s", i, lines[i])
		}
	}
}

// The aggregator's IAM role may only UpdateItem usage snapshot partitions (infra: TableGrants):
// both fixtures run under that restriction.
func TestWritesStayInUsagePartitions(t *testing.T) {
	guard := ddbtest.NewGuard(ddbtest.Partitions{"dynamodb:UpdateItem": {"U#*"}})
	tbl := ddbtest.NewTable(t, ddbtest.Client(t, guard.Option()))
	agg := usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.DiscardHandler)})
	for _, fixture := range []string{"bucket-changes.json", "mixed.json"} {
		if resp := invoke(t, agg, fixture); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: failures %v", fixture, resp.BatchItemFailures)
		}
	}
	if v := guard.Violations(); len(v) > 0 || agg.Stats().Writes == 0 {
		t.Fatalf("violations %v, writes %d", v, agg.Stats().Writes)
	}
}

func milli64(m map[string]tokenbucket.Int128) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k], _ = v.Int64()
	}
	return out
}
