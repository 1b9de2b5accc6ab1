package usage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

var params = map[string]tokenbucket.Params{
	"rpm": {Capacity: 100_000, Amount: 100_000, Period: 60_000},
	"tpm": {Capacity: 10_000_000, Amount: 10_000_000, Period: 60_000},
	"rpd": {Capacity: 1_000_000, Amount: 1_000_000, Period: 86_400_000},
}

// op is one limiter write: the same change of every entity listed (a child and its parent
// cascade in one transaction), at one time by the limiter's clock.
type op struct {
	at       string // RFC 3339
	entities []string
	resource string
	consumed map[string]int64 // millitokens by limit; negative is a refund
	acquires int64            // +1 acquire, −1 rollback, 0 adjustment
}

// The scenario: a parent and two children, across an hour boundary (22:59:59.999 → 23:00) and
// a day boundary (23:59:59.5 → 00:00:00.001), with acquires, adjustments (+ and −), rollbacks,
// a limit that appears later, a write that consumes nothing, a write whose clock lags behind
// the previous one across both boundaries, a second resource, an entity item (not a bucket)
// and a bucket deletion.
var scenario = []op{
	{"2026-11-26T22:10:00Z", []string{"k1", "proj"}, "gpt-4", map[string]int64{"rpm": 1000, "tpm": 300_000}, 1},
	{"2026-11-26T22:30:00Z", []string{"k1"}, "llama", map[string]int64{"rpm": 1000}, 1},
	{"2026-11-26T22:45:30.123Z", []string{"k2", "proj"}, "gpt-4", map[string]int64{"rpm": 1000, "tpm": 100_000}, 1},
	{"2026-11-26T22:59:59.999Z", []string{"k1", "proj"}, "gpt-4", map[string]int64{"tpm": 50_000}, 0},
	{"2026-11-26T23:00:00Z", []string{"k1", "proj"}, "gpt-4", map[string]int64{"rpm": 1000, "tpm": 200_000}, 1},
	{"2026-11-26T23:20:00Z", []string{"k2", "proj"}, "gpt-4", map[string]int64{"rpm": -1000, "tpm": -100_000}, -1},
	{"2026-11-26T23:59:59.500Z", []string{"k2", "proj"}, "gpt-4", map[string]int64{"rpm": 2000, "tpm": 10_000}, 1},
	{"2026-11-27T00:00:00.001Z", []string{"k1", "proj"}, "gpt-4", map[string]int64{"tpm": -20_000}, 0},
	{"2026-11-27T00:05:00Z", []string{"k2", "proj"}, "gpt-4", map[string]int64{"rpm": 1000, "tpm": 5000, "rpd": 1000}, 1},
	{"2026-11-27T00:06:00Z", []string{"k1"}, "gpt-4", nil, 0}, // consumes nothing
	{"2026-11-26T23:59:59.900Z", []string{"k2"}, "gpt-4", map[string]int64{"rpm": 1000}, 1},
	{"2026-11-27T01:30:00Z", []string{"k1", "proj"}, "gpt-4", map[string]int64{"rpm": 3000, "tpm": 1_000_000}, 3},
}

type snapKey struct {
	entity, resource string
	window           usage.Window
	start            string
}

type snapVal struct {
	milli    map[string]int64
	acquires int64
}

// expected sums the scenario by hand: what every snapshot must hold.
func expected(t *testing.T, ops []op) map[snapKey]snapVal {
	out := map[snapKey]snapVal{}
	for _, o := range ops {
		if len(o.consumed) == 0 && o.acquires == 0 {
			continue
		}
		at := mustTime(t, o.at).UnixMilli()
		for _, e := range o.entities {
			for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
				k := snapKey{e, o.resource, w, storage.FormatWindowStart(w.Start(at))}
				v := out[k]
				if v.milli == nil {
					v.milli = map[string]int64{}
				}
				for l, x := range o.consumed {
					v.milli[l] += x
				}
				v.acquires += o.acquires
				out[k] = v
			}
		}
	}
	return out
}

func mustTime(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// runScenario writes the scenario's bucket changes with storage.WriteBuckets, plus an entity
// item and a bucket deletion, and returns the number of stream records it made.
func runScenario(t *testing.T, tbl *storage.Table, client *dynamodb.Client) int {
	ctx := context.Background()
	records := writeOps(t, tbl, scenario, 0)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl.Name()),
		Item: map[string]types.AttributeValue{"PK": s("E#k1"), "SK": s("#META")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tbl.Name()),
		Key: map[string]types.AttributeValue{"PK": s("B#k1"), "SK": s("B#llama")}}); err != nil {
		t.Fatal(err)
	}
	return records + 2
}

// writeOps writes ops[skip:] as bucket writes and returns the number of items written (one
// stream record each). ops[:skip] were written before: they only tell which buckets and limits
// exist already (a new limit is written SetFull, an existing one with Add).
func writeOps(t *testing.T, tbl *storage.Table, ops []op, skip int) int {
	ctx := context.Background()
	seen := map[string]bool{}
	records := 0
	for i, o := range ops {
		now := mustTime(t, o.at).UnixMilli()
		var writes []storage.BucketWrite
		for _, e := range o.entities {
			w := storage.BucketWrite{EntityID: e, Resource: o.resource, Now: now, Acquires: o.acquires, Create: !seen[e+"/"+o.resource]}
			seen[e+"/"+o.resource] = true
			names := make([]string, 0, len(o.consumed))
			for l := range o.consumed {
				names = append(names, l)
			}
			sort.Strings(names)
			if len(names) == 0 {
				names = []string{"rpm"} // a write that moves the state only
			}
			for _, l := range names {
				p, x := params[l], o.consumed[l]
				if k := e + "/" + o.resource + "/" + l; !seen[k] {
					seen[k] = true
					w.Limits = append(w.Limits, storage.LimitWrite{Name: l, Mode: storage.SetFull, Params: p,
						Value: p.ChargeFull(now, max(x, 0)), Floor: p.Floor(now), Consumed: x})
				} else {
					w.Limits = append(w.Limits, storage.LimitWrite{Name: l, Mode: storage.Add, Params: p, Value: p.Delta(x), Consumed: x})
				}
			}
			writes = append(writes, w)
		}
		if i < skip {
			continue
		}
		if _, err := tbl.WriteBuckets(ctx, writes, storage.WriteOptions{}); err != nil {
			t.Fatalf("write %v: %v", o, err)
		}
		records += len(writes)
	}
	return records
}

func streamsClient(t testing.TB) *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ddbtest.Endpoint(t)),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// captured is the scenario's real stream, read once by the stream poller.
var captured struct {
	once    sync.Once
	batches [][]events.DynamoDBEventRecord
}

// scenarioStream runs the scenario on a table of DynamoDB Local and returns its stream records
// as the poller delivered them, in batches of 5.
func scenarioStream(t *testing.T) [][]events.DynamoDBEventRecord {
	captured.once.Do(func() {
		client := ddbtest.Client(t)
		src := ddbtest.NewTable(t, client)
		want := runScenario(t, src, client)
		captured.batches = capture(t, src.Name(), want, 5)
	})
	if len(captured.batches) == 0 {
		t.Fatal("no stream captured")
	}
	return captured.batches
}

// capture reads the table's stream with the poller until want records arrived.
func capture(t *testing.T, table string, want, batchSize int) [][]events.DynamoDBEventRecord {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var batches [][]events.DynamoDBEventRecord
	n := 0
	p, err := streampoller.New(streampoller.Config{
		Client: streamsClient(t), TableName: table, BatchSize: batchSize, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		Handler: func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			batches = append(batches, ev.Records)
			if n += len(ev.Records); n >= want {
				cancel()
			}
			return events.DynamoDBEventResponse{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("captured %d stream records, want %d", n, want)
	}
	return batches
}

// deliver runs records through the handler on Lambda's JSON path and returns the sequence
// numbers it reports as failed.
func deliver(t *testing.T, agg *usage.Aggregator, records []events.DynamoDBEventRecord) []string {
	t.Helper()
	if len(records) == 0 {
		return nil
	}
	payload, err := json.Marshal(events.DynamoDBEvent{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambda.NewHandler(agg.Handle).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// readAll reads every snapshot back through the admin queries: per entity (all resources) and
// per resource (GSI2).
func readAll(t *testing.T, tbl *storage.Table) (byEntity, byResource map[snapKey]snapVal) {
	t.Helper()
	ctx := context.Background()
	r := usage.NewReader(tbl)
	from, to := mustTime(t, "2026-01-01T00:00:00Z"), mustTime(t, "2027-01-01T00:00:00Z")
	byEntity = map[snapKey]snapVal{}
	add := func(into map[snapKey]snapVal, s usage.Snapshot) {
		for l, v := range s.MilliCounters {
			if s.Counters[l] != v.Quo(1000) {
				t.Errorf("%s/%s %s: whole tokens %s for %s millitokens", s.EntityID, s.Resource, l, s.Counters[l], v)
			}
		}
		k := snapKey{s.EntityID, s.Resource, s.Window, s.WindowStart.Format(time.RFC3339)}
		if _, dup := into[k]; dup {
			t.Errorf("snapshot %v returned twice", k)
		}
		into[k] = snapVal{int64s(t, s.MilliCounters), s.Acquires}
	}
	for _, e := range []string{"k1", "k2", "proj"} {
		for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
			token := ""
			for {
				p, err := r.QueryEntityUsage(ctx, e, "", w, from, to, 2, token)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range p.Snapshots {
					add(byEntity, s)
				}
				if token = p.NextToken; token == "" {
					break
				}
			}
		}
	}
	byResource = map[snapKey]snapVal{}
	for _, res := range []string{"gpt-4", "llama"} {
		for _, w := range []usage.Window{usage.Hourly, usage.Daily} {
			token := ""
			for {
				p, err := r.QueryResourceUsage(ctx, res, w, from, to, 3, token)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range p.Snapshots {
					add(byResource, s)
				}
				if token = p.NextToken; token == "" {
					break
				}
			}
		}
	}
	return byEntity, byResource
}

func checkExact(t *testing.T, tbl *storage.Table, ops []op) {
	t.Helper()
	got, byResource := readAll(t, tbl)
	want := expected(t, ops)
	if !reflect.DeepEqual(got, byResource) {
		t.Errorf("per-entity and per-resource queries disagree:\n%v\n%v", got, byResource)
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if g, ok := got[k]; !ok || !reflect.DeepEqual(g, v) {
				t.Errorf("%v: got %v (present %v), want %v", k, g, ok, v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%v: unexpected snapshot %v", k, v)
			}
		}
		t.FailNow()
	}
}

func newAggregator(t *testing.T) (*usage.Aggregator, *storage.Table) {
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	return usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.DiscardHandler)}), tbl
}

// TestStreamToSnapshotsExact feeds the real stream of the scenario to the aggregator in every
// way Lambda may deliver it, each on a fresh snapshot table, and checks every snapshot against
// the hand-computed sums.
func TestStreamToSnapshotsExact(t *testing.T) {
	batches := scenarioStream(t)
	var all []events.DynamoDBEventRecord
	for _, b := range batches {
		all = append(all, b...)
	}
	deliveries := map[string]func(t *testing.T, agg *usage.Aggregator){
		"once": func(t *testing.T, agg *usage.Aggregator) {
			for _, b := range batches {
				deliver(t, agg, b)
			}
		},
		"one batch": func(t *testing.T, agg *usage.Aggregator) { deliver(t, agg, all) },
		"every record twice in one batch": func(t *testing.T, agg *usage.Aggregator) {
			var twice []events.DynamoDBEventRecord
			for _, r := range all {
				twice = append(twice, r, r)
			}
			deliver(t, agg, twice)
		},
		"every batch twice": func(t *testing.T, agg *usage.Aggregator) {
			for _, b := range batches {
				deliver(t, agg, b)
				deliver(t, agg, b)
			}
		},
		// BisectBatchOnFunctionError: each half alone, then the whole batch retried.
		"halves then retried": func(t *testing.T, agg *usage.Aggregator) {
			for _, b := range batches {
				deliver(t, agg, b[:len(b)/2])
				deliver(t, agg, b[len(b)/2:])
				deliver(t, agg, b)
			}
		},
		// The whole stream again after it was applied, in batches of another size.
		"replayed whole": func(t *testing.T, agg *usage.Aggregator) {
			deliver(t, agg, all)
			for i := 0; i < len(all); i += 3 {
				deliver(t, agg, all[i:min(i+3, len(all))])
			}
		},
	}
	for name, run := range deliveries {
		t.Run(name, func(t *testing.T) {
			agg, tbl := newAggregator(t)
			run(t, agg)
			checkExact(t, tbl, scenario)
			if s := agg.Stats(); s.Malformed != 0 || s.Failed != 0 || s.Removed == 0 || s.NotBucket == 0 || s.Unchanged == 0 || s.Applied != 20 {
				t.Errorf("stats %+v", s)
			}
		})
	}
	// Lambda's retries at random: each delivery starts anywhere at or before the first record
	// not yet done (records after a failure, or a whole batch again) and may be split in halves.
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("random retries %d", seed), func(t *testing.T) {
			agg, tbl := newAggregator(t)
			rng := rand.New(rand.NewPCG(seed, 42))
			for done := 0; done < len(all); {
				from := max(0, done-rng.IntN(8))
				to := min(len(all), done+1+rng.IntN(8))
				b := all[from:to]
				if rng.IntN(3) == 0 {
					mid := rng.IntN(len(b) + 1)
					deliver(t, agg, b[:mid])
					deliver(t, agg, b[mid:])
				} else {
					deliver(t, agg, b)
				}
				done = to
			}
			checkExact(t, tbl, scenario)
		})
	}
}

// TestLivePollerAggregates runs the stream poller with the aggregator as its handler, the way
// make run does, on the table the limiter writes; the poller is restarted half-way and resumes
// from its state file. Snapshots appear within seconds and are exact.
func TestLivePollerAggregates(t *testing.T) {
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client)
	agg := usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.DiscardHandler)})
	state := filepath.Join(t.TempDir(), "stream.json")
	// handled wakes waitExact after every batch the aggregator handled: it checks then, and
	// never sleeps.
	handled := make(chan struct{}, 1)
	handle := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		resp, err := agg.Handle(ctx, ev)
		select {
		case handled <- struct{}{}:
		default:
		}
		return resp, err
	}
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := streampoller.New(streampoller.Config{Client: streamsClient(t), TableName: tbl.Name(), StatePath: state,
			Handler: handle, PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	stop := start()
	const half = 6
	writeOps(t, tbl, scenario[:half], 0)
	waitExact(t, tbl, scenario[:half], handled)
	stop()
	// Restarted: the poller resumes after the last record it finished; the aggregator drops
	// whatever comes back twice.
	stop = start()
	defer stop()
	writeOps(t, tbl, scenario, half)
	waitExact(t, tbl, scenario, handled)
	if s := agg.Stats(); s.Failed != 0 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// waitExact waits until the snapshots equal the sums of ops (the poller runs behind): it checks
// now and after each batch handled, and gives up after 10 s without one.
func waitExact(t *testing.T, tbl *storage.Table, ops []op, handled <-chan struct{}) {
	t.Helper()
	for {
		byEntity, byResource := readAll(t, tbl)
		if want := expected(t, ops); reflect.DeepEqual(byEntity, want) && reflect.DeepEqual(byResource, want) {
			return
		}
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			checkExact(t, tbl, ops) // reports the difference
			return
		}
	}
}

// int64s returns m in 64 bits, failing the test for a value that does not fit.
func int64s(t testing.TB, m map[string]tokenbucket.Int128) map[string]int64 {
	t.Helper()
	out := make(map[string]int64, len(m))
	for k, v := range m {
		x, ok := v.Int64()
		if !ok {
			t.Fatalf("%s = %s does not fit 64 bits", k, v)
		}
		out[k] = x
	}
	return out
}
