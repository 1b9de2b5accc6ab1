package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

var errModel = errors.New("the model failed")

// callModel stands for the work a lease pays for; this one fails the second time.
func callModel(ctx context.Context) error {
	if calls, _ := ctx.Value(callsKey{}).(*int); calls != nil {
		*calls++
		if *calls == 2 {
			return errModel
		}
	}
	return nil
}

type callsKey struct{}

// The README's client example, against the local stack (API Gateway and both functions) on a
// DynamoDB Local table: a call that succeeds is committed, one that fails is rolled back.
func ExampleNewHTTP() {
	ddb := ddbtest.NewClient(os.Getenv(ddbtest.EnvEndpoint))
	table := "example-" + randid.Hex()
	if err := limiter.New(ddb, table).CreateTable(context.Background()); err != nil {
		panic(err)
	}
	srv, err := gateway.Listen("127.0.0.1:0", gateway.NewStack(gateway.Config{DynamoDB: ddb, Table: table}))
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	apiURL := srv.URL
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	calls := 0
	ctx := context.WithValue(context.Background(), callsKey{}, &calls)

	c, _ := client.NewHTTP(apiURL, client.WithAWSConfig(cfg)) // SigV4-signed
	// or: c := client.NewLambda(lambda.NewFromConfig(cfg), acquireFunctionARN)    // Lambda Invoke
	for range 2 {
		err := c.Do(ctx, wire.AcquireRequest{EntityID: "key-1", Resource: "gpt-4",
			Limits:  []wire.Limit{wire.PerMinute("rpm", 100)},
			Consume: map[string]int64{"rpm": 1}},
			func(ctx context.Context, l *client.Lease) error { return callModel(ctx) }) // rolled back on error
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// the model failed
}
