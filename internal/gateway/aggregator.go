package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// AggregatorEnv is what the aggregator needs to run beside the local stack.
type AggregatorEnv struct {
	Streams   streampoller.Client // DynamoDB Streams (streampoller.NewClient; DynamoDB Local serves both APIs)
	DynamoDB  storage.Client
	Table     string
	StatePath string // where the poller keeps its stream position ("" keeps it in memory)
	Log       *slog.Logger
}

// RunAggregator runs the aggregator on the table's stream until ctx is cancelled, as Lambda
// would: the stream poller hands the aggregator's handler the event shape Lambda delivers,
// bucket records only (the filter of the deployed event source mapping), and resumes from
// StatePath after a restart. It returns nil when ctx ends, or an error if it cannot go on.
func RunAggregator(ctx context.Context, env AggregatorEnv) error {
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	agg := usage.NewAggregator(storage.New(env.DynamoDB, env.Table), usage.Config{Logger: log})
	p, err := streampoller.New(streampoller.Config{
		Client:    env.Streams,
		TableName: env.Table,
		StatePath: env.StatePath,
		Handler:   agg.Handle,
		Filter:    streampoller.PartitionKeyPrefix(storage.PrefixBucket),
		Logger:    log,
	})
	if err != nil {
		return fmt.Errorf("stream poller: %w", err)
	}
	return p.Run(ctx)
}
