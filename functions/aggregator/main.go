// Command aggregator is the Lambda function on the table's DynamoDB stream: it turns bucket
// changes into hourly and daily usage snapshots (package usage).
//
// Environment: TABLE_NAME (required), SNAPSHOT_RETENTION_DAYS (default 90), LOG_LEVEL (DEBUG,
// INFO, WARN, ERROR; default INFO), and the AWS variables of package lambdaenv. Each batch
// writes one EMF metrics line (package metrics: records, usage applied, malformed records,
// snapshot writes, latency). Locally,
// `make run` runs the same handler on DynamoDB Local's stream (cmd/devstack).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/internal/lambdaenv"
	"github.com/zeroae/zae-limiter-go/shared/metrics"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// EnvRetentionDays names the variable that sets how long snapshots are kept.
const EnvRetentionDays = "SNAPSHOT_RETENTION_DAYS"

func main() {
	env, err := lambdaenv.Load(os.Getenv)
	if err == nil {
		var retention time.Duration
		if retention, err = retentionFromEnv(os.Getenv); err == nil {
			agg := usage.NewAggregator(storage.New(env.DynamoDB, env.Table), usage.Config{Retention: retention, Logger: env.Log})
			lambda.Start(withMetrics(agg, env.Metrics, env.Function, env.Log, time.Now))
			return
		}
	}
	fmt.Fprintln(os.Stderr, "aggregator: bad configuration:", err)
	os.Exit(1)
}

// handler is what the Lambda runtime calls with each batch.
type handler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// withMetrics returns agg.Handle writing one EMF line per batch to em (dimension FunctionName =
// function): what the batch added to agg.Stats() and its duration. Lambda hands one batch at a
// time to an instance, so the difference of Stats around a call is that call's.
func withMetrics(agg *usage.Aggregator, em *metrics.Emitter, function string, log *slog.Logger, now func() time.Time) handler {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		before, began := agg.Stats(), now()
		resp, err := agg.Handle(ctx, ev)
		after, end := agg.Stats(), now()
		if merr := em.Emit(end, []metrics.Dimension{{Name: metrics.DimFunction, Value: function}},
			metrics.Count(metrics.MetricRecords, after.Records-before.Records),
			metrics.Count(metrics.MetricApplied, after.Applied-before.Applied),
			metrics.Count(metrics.MetricDuplicates, after.Duplicates-before.Duplicates),
			metrics.Count(metrics.MetricMalformed, after.Malformed-before.Malformed),
			metrics.Count(metrics.MetricRetried, after.Failed-before.Failed),
			metrics.Count(metrics.MetricSnapshotWrites, after.Writes-before.Writes),
			metrics.Duration(metrics.MetricBatchLatency, end.Sub(began)),
		); merr != nil {
			log.WarnContext(ctx, "metrics not written", "error", merr.Error())
		}
		return resp, err
	}
}

// retentionFromEnv reads SNAPSHOT_RETENTION_DAYS through getenv: whole days from 1 to 36500,
// usage.DefaultRetention when unset.
func retentionFromEnv(getenv func(string) string) (time.Duration, error) {
	v := getenv(EnvRetentionDays)
	if v == "" {
		return usage.DefaultRetention, nil
	}
	days, err := strconv.Atoi(v)
	if err != nil || days < 1 || days > 36500 {
		return 0, fmt.Errorf("%s %q must be a whole number of days from 1 to 36500", EnvRetentionDays, v)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}
