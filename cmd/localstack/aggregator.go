package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// AggregatorEnv is what the aggregator needs to run beside the local stack.
type AggregatorEnv struct {
	AWS       aws.Config // the same configuration as the functions (AWS_ENDPOINT_URL_DYNAMODB set)
	DynamoDB  *dynamodb.Client
	Table     string
	StatePath string // where the poller keeps its stream position ("" keeps it in memory)
	Log       *slog.Logger
}

// runAggregator runs the aggregator on the table's stream until ctx is cancelled, as Lambda
// would: the stream poller hands the aggregator's handler the event shape Lambda delivers,
// bucket records only (the filter of the deployed event source mapping), and resumes from
// StatePath after a restart. It returns nil when ctx ends, or an error if it cannot go on.
func runAggregator(ctx context.Context, env AggregatorEnv) error {
	agg := usage.NewAggregator(storage.New(env.DynamoDB, env.Table), usage.Config{Logger: env.Log})
	p, err := streampoller.New(streampoller.Config{
		Client:    streampoller.NewClient(env.AWS),
		TableName: env.Table,
		StatePath: env.StatePath,
		Handler:   agg.Handle,
		Filter:    streampoller.PartitionKeyPrefix(storage.PrefixBucket),
		Logger:    env.Log,
	})
	if err != nil {
		return fmt.Errorf("stream poller: %w", err)
	}
	return p.Run(ctx)
}
