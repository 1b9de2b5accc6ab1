// Package stacktest starts what `make run` serves, inside a test: a fresh table on the test's
// DynamoDB Local (package ddbtest), both functions behind the local gateway on a free port, and
// the aggregator on the table's stream, all stopped when the test ends.
package stacktest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// Stack is a running local stack.
type Stack struct {
	URL   string // http://127.0.0.1:port
	Table string
	// Admin is a limiter on the same table (for checks behind the API's back).
	Admin *limiter.Limiter
}

// Options change the stack. Extra wraps the gateway (to serve more, such as a page).
type Options struct {
	Aggregate bool
	Extra     func(http.Handler) http.Handler
	// LimiterOptions go to both functions' limiters (default: caches off, so that changes
	// apply at once in tests).
	LimiterOptions []limiter.Option
}

// Start starts a stack for t.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client).Name()
	opts := o.LimiterOptions
	if opts == nil {
		opts = []limiter.Option{limiter.WithCacheTTL(0)}
	}
	var h http.Handler = gateway.NewStack(gateway.Config{DynamoDB: client, Table: table, LimiterOptions: opts})
	if o.Extra != nil {
		h = o.Extra(h)
	}
	srv, err := gateway.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if o.Aggregate {
		streams := dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1", BaseEndpoint: aws.String(ddbtest.Endpoint(t)),
			Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
		go func() {
			done <- gateway.RunAggregator(ctx, gateway.AggregatorEnv{Streams: streams, DynamoDB: client, Table: table})
		}()
	} else {
		done <- nil
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("aggregator: %v", err)
		}
	})
	return &Stack{URL: srv.URL, Table: table, Admin: limiter.New(client, table, limiter.WithLogger(slog.New(slog.DiscardHandler)))}
}
