package limiter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/internal/testclock"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// The README's code examples are these functions: TestReadmeExamples checks that every line of
// each README block marked with an Example's name appears, in order, in that Example.

// exampleTable returns a DynamoDB client for the tests' DynamoDB Local, a fresh table name and
// the limiter options of the examples (a fixed clock, so their output never varies).
func exampleTable() (*dynamodb.Client, string, []limiter.Option) {
	client := ddbtest.NewClient(os.Getenv(ddbtest.EnvEndpoint))
	table := "example-" + randid.Hex()
	clock := testclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if err := limiter.New(client, table).CreateTable(context.Background()); err != nil {
		panic(err)
	}
	return client, table, []limiter.Option{limiter.WithClock(clock.Now)}
}

func dropTable(client *dynamodb.Client, table string) {
	_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
}

type llmResponse struct{ TotalTokens int64 }

// callLLM stands for the work a lease pays for: an LLM call that used 1,200 tokens.
func callLLM(context.Context) (llmResponse, error) { return llmResponse{TotalTokens: 1200}, nil }

// Acquire, reconcile the real usage, commit; then a refusal that explains itself.
func Example() {
	ctx := context.Background()
	client, table, opts := exampleTable()
	defer dropTable(client, table)
	lim := limiter.New(client, table, opts...)

	err := lim.Do(ctx, limiter.AcquireRequest{
		EntityID: "api-key-123",
		Resource: "gpt-4",
		Limits: []limiter.Limit{
			limiter.PerMinute("rpm", 100),                      // 100 requests/minute
			limiter.PerMinute("tpm", 10_000).WithBurst(15_000), // 10k tokens/minute, bursts of 15k
		},
		Consume: map[string]int64{"rpm": 1, "tpm": 500}, // estimate 500 tokens
	}, func(ctx context.Context, lease *limiter.Lease) error {
		resp, err := callLLM(ctx)
		if err != nil {
			return err // rolled back: the 1 request and 500 tokens are put back
		}
		// Reconcile the real usage; never refused, the bucket may go negative.
		return lease.Adjust(ctx, map[string]int64{"tpm": resp.TotalTokens - 500})
	}) // committed when the function returns nil
	fmt.Println("first call:", err)

	// A second call asks for more than is left.
	err = lim.Do(ctx, limiter.AcquireRequest{EntityID: "api-key-123", Resource: "gpt-4",
		Limits:  []limiter.Limit{limiter.PerMinute("rpm", 100), limiter.PerMinute("tpm", 10_000).WithBurst(15_000)},
		Consume: map[string]int64{"rpm": 1, "tpm": 14_000}},
		func(context.Context, *limiter.Lease) error { return nil })
	w := httptest.NewRecorder()

	var exceeded *limiter.RateLimitExceededError
	if errors.As(err, &exceeded) {
		// Every limit checked, at every level, passed or not.
		for _, s := range exceeded.Statuses {
			fmt.Printf("%s/%s: %d of %d available, %d requested, exceeded=%v, retry in %s\n",
				s.EntityID, s.Limit.Name, s.Available, s.Limit.Capacity, s.Requested, s.Exceeded, s.RetryAfter)
		}
		w.Header().Set("Retry-After", exceeded.RetryAfterHeader()) // whole seconds, rounded up
		w.WriteHeader(http.StatusTooManyRequests)
		json.NewEncoder(w).Encode(exceeded) // {"error":"rate_limit_exceeded","retry_after_ms":…,"limits":[…]}
	}
	fmt.Println(w.Code, w.Header().Get("Retry-After"))
	// Output:
	// first call: <nil>
	// api-key-123/rpm: 99 of 100 available, 1 requested, exceeded=false, retry in 0s
	// api-key-123/tpm: 13800 of 15000 available, 14000 requested, exceeded=true, retry in 1.2s
	// 429 2
}

// Hierarchy and cascade: a key and its project are charged together, or neither.
func ExampleLimiter_CreateEntity() {
	ctx := context.Background()
	client, table, opts := exampleTable()
	defer dropTable(client, table)
	lim := limiter.New(client, table, opts...)

	lim.CreateEntity(ctx, limiter.Entity{ID: "proj-1", Name: "Production"})
	lim.CreateEntity(ctx, limiter.Entity{ID: "key-abc", ParentID: "proj-1", Cascade: true})

	// key-abc cascades by default: the key's bucket and the project's are charged together, or
	// neither. A refusal's PrimaryViolation().EntityID says which level ran out.
	lease, err := lim.Acquire(ctx, limiter.AcquireRequest{
		EntityID: "key-abc", Resource: "gpt-4",
		Limits:  []limiter.Limit{limiter.PerMinute("tpm", 10_000)},
		Consume: map[string]int64{"tpm": 500},
		// Cascade: limiter.CascadeOn / CascadeOff override the entity's default.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range lease.Statuses() {
		fmt.Printf("%s: %d available\n", s.EntityID, s.Available)
	}
	fmt.Println(lease.Commit(ctx))
	// Output:
	// key-abc: 9500 available
	// proj-1: 9500 available
	// <nil>
}

// Stored limits: the most specific stored set applies, with the call's limits as a fallback.
func ExampleLimiter_SetLimits() {
	ctx := context.Background()
	client, table, opts := exampleTable()
	defer dropTable(client, table)
	lim := limiter.New(client, table, opts...)

	lim.SetLimits(ctx, limiter.EntityDefault("user-premium"), []limiter.Limit{
		limiter.PerMinute("rpm", 500),
		limiter.PerMinute("tpm", 50_000).WithBurst(75_000),
	})
	// With UseStoredLimits the first stored set wins: entity+resource, entity default, resource
	// default, system default; then the limits in the call. Cached for 60 s (WithCacheTTL).
	lease, err := lim.Acquire(ctx, limiter.AcquireRequest{
		EntityID: "user-premium", Resource: "gpt-4",
		Limits:  []limiter.Limit{limiter.PerMinute("rpm", 100)}, // fallback
		Consume: map[string]int64{"rpm": 1}, UseStoredLimits: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range lease.Statuses() {
		fmt.Printf("%s: %d of %d\n", s.Limit.Name, s.Available, s.Limit.Capacity)
	}
	// Output:
	// rpm: 499 of 500
	// tpm: 75000 of 75000
}

// Look without taking.
func ExampleLimiter_Available() {
	ctx := context.Background()
	client, table, opts := exampleTable()
	defer dropTable(client, table)
	lim := limiter.New(client, table, opts...)
	lease, _ := lim.Acquire(ctx, limiter.AcquireRequest{EntityID: "key-abc", Resource: "gpt-4",
		Limits: []limiter.Limit{limiter.PerMinute("tpm", 10_000)}, Consume: map[string]int64{"tpm": 500}})
	lease.Commit(ctx)

	req := limiter.AvailableRequest{EntityID: "key-abc", Resource: "gpt-4",
		Limits: []limiter.Limit{limiter.PerMinute("tpm", 10_000)}}
	avail, _ := lim.Available(ctx, req)                                          // map[tpm:9500]
	wait, _ := lim.TimeUntilAvailable(ctx, req, map[string]int64{"tpm": 12_000}) // exact, 0 if now
	fmt.Println(avail, wait)
	// Output:
	// map[tpm:9500] 0s
}

// Failure modes: failing open, a DynamoDB failure gives a degraded lease that writes nothing.
func ExampleWithFailureMode() {
	ctx := context.Background()
	down := ddbtest.NewClient("http://127.0.0.1:1", func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	client := down

	lim := limiter.New(client, "rate_limits", limiter.WithFailureMode(limiter.FailOpen))
	// Per call: AcquireRequest{FailureMode: limiter.FailClosed}. Failing closed, a DynamoDB failure
	// (unreachable, or throttling past the SDK's retries) is a *limiter.UnavailableError; failing
	// open, a degraded lease (lease.Degraded(), lease.DegradedCause()) that writes nothing. A
	// refusal is always a refusal, and so is a bucket too contended to write
	// (RateLimitExceededError.Contended): busy is not down.

	req := limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{limiter.PerMinute("rpm", 10)}, Consume: map[string]int64{"rpm": 1}}
	lease, err := lim.Acquire(ctx, req)
	fmt.Println(lease.Degraded(), err)
	req.FailureMode = limiter.FailClosed
	_, err = lim.Acquire(ctx, req)
	var unavailable *limiter.UnavailableError
	fmt.Println(errors.As(err, &unavailable))
	// Output:
	// true <nil>
	// true
}
