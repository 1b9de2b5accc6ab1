package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/internal/ddblocal"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// benchLimits never refuse: the benchmarks measure the write path, not refusals.
var benchLimits = []limiter.Limit{limiter.PerMinute("rpm", limiter.MaxTokens), limiter.PerMinute("tpm", limiter.MaxTokens)}

func benchRequest(key string) limiter.AcquireRequest {
	return limiter.AcquireRequest{EntityID: key, Resource: "gpt-4", Limits: benchLimits,
		Consume: map[string]int64{"rpm": 1, "tpm": 500}, Cascade: limiter.CascadeOff}
}

// paths are the ways to take tokens that the benchmarks compare, each on its own fresh table
// of the same DynamoDB Local: op(key) takes once for entity key.
func paths(b *testing.B) []struct {
	name string
	op   func(key string) error
} {
	ctx := context.Background()
	client := ddbtest.Client(b)
	quiet := slog.New(slog.DiscardHandler)

	rawTable := ddbtest.NewTable(b, client).Name()
	raw := func(key string) error {
		// The UpdateItem a hand-written limiter of this design sends: the floor any acquire pays.
		_, err := client.UpdateItem(ctx, ddbtest.RawAcquire(rawTable, key))
		return err
	}

	lim := limiter.New(client, ddbtest.NewTable(b, client).Name(), limiter.WithLogger(quiet))
	library := func(key string) error { _, err := lim.Acquire(ctx, benchRequest(key)); return err }
	var seq atomic.Int64
	stored := func(key string) error {
		// What an acquire over the API asks of the library: a stored lease and a request id
		// (the client makes one so that its retries are idempotent).
		r := benchRequest(key)
		r.LeaseTTL, r.RequestID = 15*time.Minute, "req-"+strconv.FormatInt(seq.Add(1), 10)
		_, err := lim.Acquire(ctx, r)
		return err
	}

	// The local HTTP stack: client → HTTP → gateway → payload-2.0 event JSON → lambda.Handler
	// → router → handler → limiter. Keep-alive connections, as an SDK's pool has.
	stackTable := ddbtest.NewTable(b, client).Name()
	srv, err := gateway.Listen("127.0.0.1:0", gateway.NewStack(gateway.Config{DynamoDB: client, Table: stackTable}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	hc, err := clientFor(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	settle := map[string]int64{"tpm": 1250}
	flow := func(key string) error {
		// The LLM flow in the library: a stored lease (kept in its bucket item), settled with
		// the real count: two UpdateItems.
		r := benchRequest(key)
		r.LeaseTTL = 15 * time.Minute
		l, err := lim.Acquire(ctx, r)
		if err != nil {
			return err
		}
		return l.Settle(ctx, settle)
	}
	hcl := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	hcl.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	post := func(path, body string) ([]byte, error) {
		resp, err := hcl.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %d %s", path, resp.StatusCode, out)
		}
		return out, err
	}
	httpFlow := func(key string) error {
		// The LLM flow over HTTP as the Go client sends it: acquire with an estimate and a
		// request_id (the lease lives in the bucket item), then commit with the real count.
		out, err := post("/v1/acquire", `{"entity_id":"`+key+`","resource":"gpt-4","consume":{"rpm":1,"tpm":500},"cascade":false,`+
			`"request_id":"flow-`+strconv.FormatInt(seq.Add(1), 10)+`",`+
			`"limits":[{"name":"rpm","capacity":1000000000000,"refill_amount":1000000000000,"refill_period_seconds":60},`+
			`{"name":"tpm","capacity":1000000000000,"refill_amount":1000000000000,"refill_period_seconds":60}]}`)
		if err != nil {
			return err
		}
		var a struct {
			LeaseID string `json:"lease_id"`
		}
		if err := json.Unmarshal(out, &a); err != nil || a.LeaseID == "" {
			return fmt.Errorf("acquire answer %s: %v", out, err)
		}
		_, err = post("/v1/leases/"+a.LeaseID+"/commit", `{"consumed":{"tpm":1250}}`)
		return err
	}
	httpCommitted := func(key string) error { _, err := hc.Consume(ctx, benchRequest(key)); return err }
	httpLease := func(key string) error { _, err := hc.Acquire(ctx, benchRequest(key)); return err }

	return []struct {
		name string
		op   func(key string) error
	}{
		{"raw-updateitem", raw},
		{"library", library},
		{"http-commit", httpCommitted},
		{"library-lease", stored},
		{"http-lease", httpLease},
		{"library-lease-flow", flow},
		{"http-lease-flow", httpFlow},
	}
}

func clientFor(url string) (*client.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return client.NewHTTP(url, client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}))
}

// The benchmarks interleave the paths, round by round, so that all of them see the same load:
// this machine's two cores are shared with DynamoDB Local and with whatever else runs, and a
// path measured alone during a busy minute would look slower than it is.

// BenchmarkAcquireLatency: one caller, one acquire at a time. Each of b.N rounds makes one
// acquire by every path (in rotated order) and times it. Reported per path: p50 and p99 in
// µs; and the latency the HTTP stack adds at p50 over the library making the same DynamoDB
// writes (http-commit over library, http-lease over library-lease).
func BenchmarkAcquireLatency(b *testing.B) {
	ps := paths(b)
	lat := make([][]time.Duration, len(ps))
	for i, p := range ps {
		if err := p.op("warm"); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		lat[i] = make([]time.Duration, 0, b.N)
	}
	round := 0
	for b.Loop() {
		for j := range ps {
			i := (j + round) % len(ps)
			start := time.Now()
			if err := ps[i].op(ps[i].name + "-key-" + strconv.Itoa(round%64)); err != nil {
				b.Fatalf("%s: %v", ps[i].name, err)
			}
			lat[i] = append(lat[i], time.Since(start))
		}
		round++
	}
	p50 := map[string]float64{}
	for i, p := range ps {
		slices.Sort(lat[i])
		p50[p.name] = float64(lat[i][len(lat[i])/2].Microseconds())
		b.ReportMetric(p50[p.name], p.name+"-p50-µs")
		b.ReportMetric(float64(lat[i][len(lat[i])*99/100].Microseconds()), p.name+"-p99-µs")
	}
	b.ReportMetric(0, "ns/op") // a round of every path: not a figure of any one
	b.ReportMetric(p50["http-commit"]-p50["library"], "http-commit-added-p50-µs")
	b.ReportMetric(p50["http-lease"]-p50["library-lease"], "http-lease-added-p50-µs")
}

// callers is the number of concurrent callers of the throughput benchmark.
const callers = 8

// BenchmarkAcquireThroughput: 8 concurrent callers, each on its own entity. Each round runs a
// burst of 8×10 acquires on every path in turn (rotated order) and times it; b.N is the
// acquires per path. Reported per path: acquires/s, the CPU spent per acquire by this process
// (client, gateway, function and SDK) and by DynamoDB Local (server), each path's throughput as
// a fraction of the raw UpdateItem's, and its cpu-vs-raw: the raw UpdateItem's CPU per acquire
// (client + server) ÷ the path's, what the throughput ratio tends to on a saturated machine
// whatever else it runs.
func BenchmarkAcquireThroughput(b *testing.B) {
	ps := paths(b)
	server, err := ddblocal.ServerPID(ddbtest.Endpoint(b))
	if err != nil {
		b.Fatalf("finding DynamoDB Local's process to measure its CPU: %v", err)
	}
	serverCPU := func() time.Duration {
		d, err := ddblocal.ProcessCPU(server)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	const perCaller = 10
	busy := make([]time.Duration, len(ps))
	cpu := make([]time.Duration, len(ps))
	srv := make([]time.Duration, len(ps))
	done := make([]int, len(ps))
	for _, p := range ps {
		if err := p.op("warm"); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
	}
	b.ResetTimer()
	for round := 0; done[0] < b.N; round++ {
		for j := range ps {
			i := (j + round) % len(ps)
			var wg sync.WaitGroup
			var failed atomic.Value
			start, cpu0, srv0 := time.Now(), ddblocal.SelfCPU(), serverCPU()
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each path on entities of its own: paths sharing a bucket would measure
					// each other's in-item leases (larger items cost DynamoDB more per write).
					key := ps[i].name + "-key-" + strconv.Itoa(c)
					for range perCaller {
						if err := ps[i].op(key); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			busy[i] += time.Since(start)
			cpu[i] += ddblocal.SelfCPU() - cpu0
			srv[i] += serverCPU() - srv0
			done[i] += callers * perCaller
			if err := failed.Load(); err != nil {
				b.Fatalf("%s: %v", ps[i].name, err)
			}
		}
	}
	b.ReportMetric(0, "ns/op")
	rate := map[string]float64{}
	for i, p := range ps {
		rate[p.name] = float64(done[i]) / busy[i].Seconds()
		b.ReportMetric(rate[p.name], p.name+"-acquires/s")
		b.ReportMetric(float64(cpu[i].Microseconds())/float64(done[i]), p.name+"-cpu-µs/op")
		b.ReportMetric(float64(srv[i].Microseconds())/float64(done[i]), p.name+"-server-cpu-µs/op")
	}
	perOp := func(i int) float64 { return (cpu[i] + srv[i]).Seconds() / float64(done[i]) }
	for i, p := range ps[1:] {
		b.ReportMetric(rate[p.name]/rate["raw-updateitem"], p.name+"-vs-raw")
		b.ReportMetric(perOp(0)/perOp(i+1), p.name+"-cpu-vs-raw")
	}
}
