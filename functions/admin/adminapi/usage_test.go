package adminapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// The usage routes read what the aggregator wrote from the sample stream batch.
func TestUsageRoutes(t *testing.T) {
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client)
	quiet := slog.New(slog.DiscardHandler)
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "aggregator", "bucket-changes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var batch events.DynamoDBEvent
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatal(err)
	}
	agg := usage.NewAggregator(table, usage.Config{Logger: quiet})
	if resp, err := agg.Handle(context.Background(), batch); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("aggregate the sample batch: %v %v", resp, err)
	}
	// The sample batch was written at 2026-11-26T19:55Z (its ts).
	at := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	lim := limiter.New(client, table.Name(), limiter.WithLogger(quiet))
	e := &env{t: t, lim: lim, handler: lambda.NewHandler(adminapi.New(lim, quiet, adminapi.UsageRoutes(usage.NewReader(table), func() time.Time { return at })...))}

	get := func(path string) adminapi.UsageResponse {
		t.Helper()
		r := e.expect(event(t, "get-entity.json", pathWithQuery("GET", path)), 200, `"snapshots":[`)
		var out adminapi.UsageResponse
		if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	hourly := get("/v1/entities/k1/usage")
	if len(hourly.Snapshots) == 0 || hourly.Snapshots[0].Window != "hourly" || hourly.Snapshots[0].EntityID != "k1" || hourly.Snapshots[0].Counters["tpm"].Sign() == 0 {
		t.Fatalf("hourly usage of k1: %+v", hourly)
	}
	daily := get("/v1/resources/gpt-4/usage?window=daily&from=2026-11-26T00:00:00Z")
	if len(daily.Snapshots) == 0 || daily.Snapshots[0].Window != "daily" {
		t.Fatalf("daily usage of gpt-4: %+v", daily)
	}
	// One per page: a next token leads on.
	first := get("/v1/resources/gpt-4/usage?window=hourly&limit=1")
	if first.NextToken != "" {
		next := get("/v1/resources/gpt-4/usage?window=hourly&limit=1&next_token=" + first.NextToken)
		if len(next.Snapshots) == 1 && next.Snapshots[0].EntityID == first.Snapshots[0].EntityID && next.Snapshots[0].WindowStart.Equal(first.Snapshots[0].WindowStart) {
			t.Fatalf("the next page repeats the first: %+v", next)
		}
	}
	for _, q := range []string{"?window=weekly", "?limit=0", "?from=yesterday", "?colour=red", "?next_token=%21%21", "?resource=a%23b"} {
		e.expect(event(t, "get-entity.json", pathWithQuery("GET", "/v1/entities/k1/usage"+q)), 400, `"error":"invalid_request"`)
	}
	if none := get("/v1/entities/nobody/usage"); len(none.Snapshots) != 0 {
		t.Fatalf("usage of an entity without any: %+v", none)
	}
}

// pathWithQuery sets the method, the raw path and the raw query of an event.
func pathWithQuery(method, pq string) func(*events.APIGatewayV2HTTPRequest) {
	p, q, _ := strings.Cut(pq, "?")
	return func(ev *events.APIGatewayV2HTTPRequest) {
		path(method, p)(ev)
		ev.RawQueryString = q
	}
}

// A window's total beyond 2^63 millitokens comes back exact, as a JSON integer (it used to
// break every page holding it).
func TestUsageBeyond64Bits(t *testing.T) {
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client)
	quiet := slog.New(slog.DiscardHandler)
	big, _ := tokenbucket.ParseInt128("18000000000000000000123") // millitokens
	hour := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	err := table.AddUsage(context.Background(), storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly,
		WindowStart: hour.UnixMilli(), Counters: map[string]tokenbucket.Int128{"tpm": big}, Acquires: 1,
		FirstVersion: 1, LastVersion: 1, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	lim := limiter.New(client, table.Name(), limiter.WithLogger(quiet))
	e := &env{t: t, lim: lim, handler: lambda.NewHandler(adminapi.New(lim, quiet, adminapi.UsageRoutes(usage.NewReader(table), func() time.Time { return hour })...))}
	r := e.expect(event(t, "get-entity.json", pathWithQuery("GET", "/v1/entities/k1/usage")), 200, `"counters":{"tpm":18000000000000000000}`)
	var out adminapi.UsageResponse
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil || len(out.Snapshots) != 1 || out.Snapshots[0].Counters["tpm"].String() != "18000000000000000000" {
		t.Fatalf("%s: %+v %v", r.Body, out, err)
	}
}
