package client_test

import (
	"context"
	"errors"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

var ctx = context.Background()

// backend is a table with the local stack in front of it, reachable over HTTP and by direct
// invocation of the acquire function.
type backend struct {
	url    string
	lim    *limiter.Limiter // full rights, for checks
	invoke client.InvokerFunc
	faults *ddbtest.Faults
	meter  *ddbtest.Meter // the acquire function's DynamoDB requests
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	faults, meter := &ddbtest.Faults{}, ddbtest.NewMeter()
	fc := ddbtest.Client(t, meter.Option(), faults.Option(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	table := ddbtest.NewTable(t, fc).Name()
	// A frozen clock: no refill between a call and its check.
	frozen := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	now := limiter.WithClock(func() time.Time { return frozen })
	srv, err := gateway.Listen("127.0.0.1:0", gateway.NewStack(gateway.Config{DynamoDB: fc, Table: table, LimiterOptions: []limiter.Option{now}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	quiet := slog.New(slog.DiscardHandler)
	h := lambda.NewHandler(acquireapi.New(limiter.New(fc, table, limiter.WithLogger(quiet), now), quiet))
	return &backend{url: srv.URL, lim: limiter.New(ddbtest.Client(t), table, now), invoke: h.Invoke, faults: faults, meter: meter}
}

func (b *backend) clients(t *testing.T) map[string]*client.Client {
	t.Helper()
	hc, err := client.NewHTTP(b.url, client.WithBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*client.Client{"http": hc, "lambda": client.NewLambda(b.invoke, "acquire", client.WithBackoff(time.Millisecond))}
}

var llm = []limiter.Limit{limiter.PerMinute("rpm", 100), limiter.PerMinute("tpm", 10000)}

func request(entity string) limiter.AcquireRequest {
	return limiter.AcquireRequest{EntityID: entity, Resource: "gpt-4", Limits: llm, Consume: map[string]int64{"rpm": 1, "tpm": 500}}
}

func (b *backend) left(t *testing.T, entity string) map[string]int64 {
	t.Helper()
	got, err := b.lim.Available(ctx, limiter.AvailableRequest{EntityID: entity, Resource: "gpt-4", Limits: llm})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLeaseCalls(t *testing.T) {
	b := newBackend(t)
	for name, c := range b.clients(t) {
		t.Run(name, func(t *testing.T) {
			key := "key-" + name
			lease, err := c.Acquire(ctx, request(key))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(lease.ID(), "b.") || lease.Degraded() || lease.Consumed()["tpm"] != 500 || len(lease.Statuses()) != 2 || lease.ExpiresAt().IsZero() {
				t.Fatalf("lease %+v", lease)
			}
			if err := lease.Adjust(ctx, map[string]int64{"tpm": 1500}); err != nil {
				t.Fatal(err)
			}
			if lease.Consumed()["tpm"] != 2000 || lease.Statuses()[1].Available != 8000 {
				t.Fatalf("after adjust: %v %v", lease.Consumed(), lease.Statuses())
			}
			if err := lease.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Rollback(ctx, lease.ID()); err != nil {
				t.Fatalf("second rollback: %v", err)
			}
			if got := b.left(t, key); got["tpm"] != 10000 || got["rpm"] != 100 {
				t.Fatalf("after rollback: %v", got)
			}
			if err := lease.Commit(ctx); !errors.Is(err, client.ErrLeaseRolledBack) {
				t.Fatalf("commit after rollback: %v", err)
			}
			var apiErr *client.Error
			if err := c.Commit(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, limiter.ErrLeaseNotFound) || !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
				t.Fatalf("unknown lease: %v", err)
			}
			// Commit, then a rollback from "another process" (by id) is a conflict.
			lease, err = c.Acquire(ctx, request(key))
			if err != nil {
				t.Fatal(err)
			}
			if err := lease.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Rollback(ctx, lease.ID()); !errors.Is(err, limiter.ErrLeaseCommitted) {
				t.Fatalf("rollback after commit: %v", err)
			}
			if _, err := c.Adjust(ctx, lease.ID(), map[string]int64{"tpm": 1}); !errors.Is(err, client.ErrLeaseCommitted) {
				t.Fatalf("adjust after commit: %v", err)
			}
			// Looking without taking.
			avail, err := c.Available(ctx, limiter.AvailableRequest{EntityID: key, Resource: "gpt-4", Limits: llm})
			if err != nil || avail["tpm"] != 9500 {
				t.Fatalf("available %v %v", avail, err)
			}
			wait, err := c.TimeUntilAvailable(ctx, limiter.AvailableRequest{EntityID: key, Resource: "gpt-4", Limits: llm}, map[string]int64{"tpm": 9600})
			if err != nil || wait != 600*time.Millisecond {
				t.Fatalf("time until available %v %v", wait, err)
			}
			// A committed acquire keeps no lease.
			st, err := c.Consume(ctx, request(key))
			if err != nil || len(st) != 2 || st[1].Available != 9000 {
				t.Fatalf("consume: %v %v", st, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	b := newBackend(t)
	for name, c := range b.clients(t) {
		t.Run(name, func(t *testing.T) {
			tight := limiter.AcquireRequest{EntityID: "tight-" + name, Resource: "gpt-4", Limits: []limiter.Limit{limiter.PerMinute("rpm", 3)}, Consume: map[string]int64{"rpm": 2}}
			if _, err := c.Acquire(ctx, tight); err != nil {
				t.Fatal(err)
			}
			_, err := c.Acquire(ctx, tight)
			var rl *client.RateLimitExceededError
			var lib *limiter.RateLimitExceededError
			if !errors.As(err, &rl) || !errors.As(err, &lib) {
				t.Fatalf("429: %T %v", err, err)
			}
			if rl.RetryAfter != 20*time.Second || len(rl.Statuses) != 1 || !rl.Statuses[0].Exceeded || lib.PrimaryViolation().Limit.Name != "rpm" || len(rl.Violations()) != 1 {
				t.Fatalf("429 content: %+v", rl)
			}

			bad := request("k")
			bad.Consume = map[string]int64{"rpm": -1}
			_, err = c.Acquire(ctx, bad)
			var ve *client.ValidationError
			var lve *limiter.ValidationError
			if !errors.As(err, &ve) || !errors.As(err, &lve) || ve.StatusCode != 400 || lve.Field != "consume.rpm" {
				t.Fatalf("400: %T %v", err, err)
			}

			b.faults.Fail("", -1, nil)
			defer b.faults.Clear()
			_, err = c.Acquire(ctx, request("down"))
			var ue *client.UnavailableError
			var lue *limiter.UnavailableError
			if !errors.As(err, &ue) || !errors.As(err, &lue) || ue.StatusCode != 503 {
				t.Fatalf("503: %T %v", err, err)
			}
			open := request("down")
			open.FailureMode = limiter.FailOpen
			lease, err := c.Acquire(ctx, open)
			if err != nil || !lease.Degraded() {
				t.Fatalf("fail open: %v %v", lease, err)
			}
			// A degraded lease settles locally, as the library's does.
			if err := lease.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if err := lease.Commit(ctx); !errors.Is(err, limiter.ErrLeaseRolledBack) {
				t.Fatalf("commit after rollback of a degraded lease: %v", err)
			}
		})
	}
}

func TestDo(t *testing.T) {
	b := newBackend(t)
	for name, c := range b.clients(t) {
		t.Run(name, func(t *testing.T) {
			key := "do-" + name
			var id string
			if err := c.Do(ctx, request(key), func(_ context.Context, l *client.Lease) error { id = l.ID(); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := c.Rollback(ctx, id); !errors.Is(err, limiter.ErrLeaseCommitted) {
				t.Fatalf("Do did not commit: %v", err)
			}
			boom := errors.New("model call failed")
			if err := c.Do(ctx, request(key), func(context.Context, *client.Lease) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("Do error: %v", err)
			}
			if got := b.left(t, key); got["tpm"] != 9500 {
				t.Fatalf("failed work was not rolled back: %v", got)
			}
			func() {
				defer func() {
					if p := recover(); p != "panic in work" {
						t.Fatalf("recovered %v", p)
					}
				}()
				_ = c.Do(ctx, request(key), func(context.Context, *client.Lease) error { panic("panic in work") })
			}()
			if got := b.left(t, key); got["tpm"] != 9500 {
				t.Fatalf("panicking work was not rolled back: %v", got)
			}
		})
	}
}

// An acquire whose answer is lost is retried with the same request id: one lease, one charge.
func TestRetryIsIdempotent(t *testing.T) {
	b := newBackend(t)
	target, _ := url.Parse(b.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Forward, then lose the answer.
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"message":"Internal Server Error"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	c, err := client.NewHTTP(flaky.URL, client.WithBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lease, err := c.Acquire(ctx, request("retry"))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || lease.Consumed()["tpm"] != 500 {
		t.Fatalf("calls %d, lease %v", calls.Load(), lease.Consumed())
	}
	if got := b.left(t, "retry"); got["tpm"] != 9500 || got["rpm"] != 99 {
		t.Fatalf("the retry charged again: %v", got)
	}
	// An adjust whose answer is lost is retried with its idempotency key: applied once.
	calls.Store(0)
	if _, err := c.Adjust(ctx, lease.ID(), map[string]int64{"tpm": 1}); err != nil || calls.Load() != 2 {
		t.Fatalf("adjust: %v after %d calls", err, calls.Load())
	}
	if got := b.left(t, "retry"); got["tpm"] != 9499 {
		t.Fatalf("the retried adjust charged %v, want 9499 left (once)", got)
	}
	// The same key sent again, by any caller, changes nothing.
	for range 2 {
		if _, err := c.AdjustOnce(ctx, lease.ID(), "refund-1", map[string]int64{"tpm": -100}); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.left(t, "retry"); got["tpm"] != 9599 {
		t.Fatalf("keyed refund sent twice: %v, want 9599 left", got)
	}
	// Settling with the real count, the first answer lost: retried, applied once.
	calls.Store(0)
	if err := c.Settle(ctx, lease.ID(), map[string]int64{"tpm": 2000}); err != nil || calls.Load() != 2 {
		t.Fatalf("settle: %v after %d calls", err, calls.Load())
	}
	if got := b.left(t, "retry"); got["tpm"] != 8000 {
		t.Fatalf("after settle: %v, want 8000 left", got)
	}
	if err := c.Settle(ctx, lease.ID(), map[string]int64{"tpm": 1}); !errors.Is(err, client.ErrLeaseCommitted) {
		t.Fatalf("settle to another count after settling: %v", err)
	}
}

// With no API to reach, a fail-open acquire is granted degraded; a fail-closed one is
// unavailable.
func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := client.NewHTTP(addr, client.WithMaxAttempts(2), client.WithBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(ctx, request("k"))
	var ue *client.UnavailableError
	if !errors.As(err, &ue) || ue.StatusCode != 0 {
		t.Fatalf("unreachable: %v", err)
	}
	open := request("k")
	open.FailureMode = limiter.FailOpen
	if lease, err := c.Acquire(ctx, open); err != nil || !lease.Degraded() {
		t.Fatalf("fail open: %v", err)
	}
	if _, err := client.NewHTTP("ftp://x"); err == nil {
		t.Fatal("ftp accepted")
	}
}

// Requests are SigV4-signed for execute-api with the configured credentials and region.
func TestSigV4(t *testing.T) {
	var auth, date, hash string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, date, hash = r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), r.Header.Get("X-Amz-Content-Sha256")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"available":{"rpm":1}}`)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	c, err := client.NewHTTP(srv.URL, client.WithAWSConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Available(ctx, limiter.AvailableRequest{EntityID: "k", Resource: "r", Limits: llm}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/execute-api/aws4_request") || date == "" {
		t.Fatalf("Authorization %q, X-Amz-Date %q, hash %q", auth, date, hash)
	}
	// Without credentials nothing is signed (the local stack).
	auth = "unset"
	c, _ = client.NewHTTP(srv.URL, client.WithAWSConfig(aws.Config{}))
	if _, err := c.Available(ctx, limiter.AvailableRequest{EntityID: "k", Resource: "r", Limits: llm}); err != nil || auth != "" {
		t.Fatalf("unsigned: %q %v", auth, err)
	}
}

// failingInvoker is a Lambda Invoke that always fails, as the SDK reports it after its own
// retries, and counts the calls.
type failingInvoker struct{ calls int }

func (f *failingInvoker) Invoke(context.Context, *awslambda.InvokeInput, ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error) {
	f.calls++
	return nil, errors.New("injected: ServiceException after the SDK's retries")
}

// TestLambdaInvokeErrorIsNotRetriedTwice checks that an Invoke error, which the SDK has already
// retried, is not sent again by the client's own loop: one Invoke per call, not SDK × client.
func TestLambdaInvokeErrorIsNotRetriedTwice(t *testing.T) {
	inv := &failingInvoker{}
	c := client.NewLambda(inv, "acquire", client.WithMaxAttempts(3), client.WithBackoff(time.Millisecond))
	_, err := c.Acquire(ctx, request("k"))
	var ue *client.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want *client.UnavailableError", err)
	}
	if inv.calls != 1 {
		t.Errorf("Invoke called %d times, want 1 (the SDK retries it)", inv.calls)
	}
}

// The LLM flow through the client, which sends a request id with every acquire: acquire with
// an estimate, settle with the real count costs the API 2 requests, 0 RCU, 2 WCU (1 on AWS
// each: the lease lives in the bucket item). An acquire whose every answer is lost inside the
// function (503) is retried by the client with its request id: the retry replays the lease,
// charged once.
func TestClientLeaseFlowCost(t *testing.T) {
	b := newBackend(t)
	for name, c := range b.clients(t) {
		t.Run(name, func(t *testing.T) {
			key := "cost-" + name
			warm, err := c.Acquire(ctx, request(key)) // create the bucket
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Rollback(ctx, warm.ID()); err != nil {
				t.Fatal(err)
			}
			b.meter.Reset()
			lease, err := c.Acquire(ctx, request(key))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Settle(ctx, lease.ID(), map[string]int64{"tpm": 1250}); err != nil {
				t.Fatal(err)
			}
			if u := b.meter.Total(); u.Requests != 2 || u.TableRCU != 0 || u.TableWCU != 2 {
				t.Fatalf("client acquire + settle: %+v, want 2 requests, 0 RCU, 2 WCU", u)
			}

			before := b.faults.Lost()
			b.faults.LoseResponse("UpdateItem", 3) // the function's three tries of one call
			lost, err := c.Acquire(ctx, request(key))
			b.faults.Clear()
			if err != nil || !strings.HasPrefix(lost.ID(), "b.") || b.faults.Lost()-before != 3 {
				t.Fatalf("acquire retried by the client after a 503: %v %v (lost %d)", lost, err, b.faults.Lost()-before)
			}
			if left := b.left(t, key); left["tpm"] != 10000-1250-500 || left["rpm"] != 98 {
				t.Fatalf("after the retried acquire: %v, want it charged once", left)
			}
		})
	}
}
