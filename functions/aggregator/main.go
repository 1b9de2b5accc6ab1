// Command aggregator is the Lambda function on the table's DynamoDB stream: it turns bucket
// changes into hourly and daily usage snapshots (package usage).
//
// Environment: TABLE_NAME (required), SNAPSHOT_RETENTION_DAYS (default 90), LOG_LEVEL (DEBUG,
// INFO, WARN, ERROR; default INFO), and the AWS variables of package lambdaenv. Locally,
// `make run` runs the same handler on DynamoDB Local's stream (cmd/localstack).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/shared/lambdaenv"
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
			lambda.Start(agg.Handle)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "aggregator: bad configuration:", err)
	os.Exit(1)
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
