// Command aggregator is the Lambda function on the table's DynamoDB stream: it turns bucket
// changes into hourly and daily usage snapshots (package usage).
//
// Environment: TABLE_NAME (required), SNAPSHOT_RETENTION_DAYS (default 90), LOG_LEVEL (DEBUG,
// INFO, WARN, ERROR; default INFO). The AWS configuration is the SDK's default chain, so
// AWS_ENDPOINT_URL_DYNAMODB points it at DynamoDB Local.
//
// With -poll it does not start the Lambda runtime but reads the stream itself (package
// streampoller), for running locally: it hands the handler the same events Lambda would, keeps
// its position in the file -state names, and runs until interrupted. The streams endpoint is
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS, or AWS_ENDPOINT_URL_DYNAMODB when that is unset (DynamoDB
// Local serves both APIs on one port).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func main() {
	poll := flag.Bool("poll", false, "read the table's stream locally instead of running as a Lambda function")
	statePath := flag.String("state", ".local/aggregator-stream.json", "with -poll: file that keeps the stream position")
	flag.Parse()
	cfg, cfgErr := configFromEnv(os.Getenv)
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := run(cfg, cfgErr, *poll, *statePath, log); err != nil {
		log.Error("aggregator stopped", "error", err.Error())
		os.Exit(1)
	}
}

func run(cfg settings, cfgErr error, poll bool, statePath string, log *slog.Logger) error {
	if cfgErr != nil {
		return fmt.Errorf("bad configuration: %w", cfgErr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	table := storage.New(dynamodb.NewFromConfig(awsCfg), cfg.table)
	agg := usage.NewAggregator(table, usage.Config{Retention: cfg.retention, Logger: log})
	if !poll {
		lambda.StartWithOptions(agg.Handle, lambda.WithContext(ctx))
		return nil
	}
	p, err := streampoller.New(streampoller.Config{
		Client: streampoller.NewClient(awsCfg), TableName: cfg.table, StatePath: statePath, Handler: agg.Handle, Logger: log,
		// The event source mapping's filter: only bucket changes reach the function.
		Filter: streampoller.PartitionKeyPrefix(storage.PrefixBucket),
	})
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// settings is the function's configuration from its environment.
type settings struct {
	table     string
	retention time.Duration
	logLevel  slog.Level
}

// configFromEnv reads the environment through getenv.
func configFromEnv(getenv func(string) string) (settings, error) {
	s := settings{table: getenv("TABLE_NAME"), retention: usage.DefaultRetention, logLevel: slog.LevelInfo}
	var errs []error
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := s.logLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL %q: %w", v, err))
		}
	}
	if s.table == "" {
		errs = append(errs, errors.New("TABLE_NAME is not set"))
	}
	if v := getenv("SNAPSHOT_RETENTION_DAYS"); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > 36500 {
			errs = append(errs, fmt.Errorf("SNAPSHOT_RETENTION_DAYS %q must be a whole number of days from 1 to 36500", v))
		} else {
			s.retention = time.Duration(days) * 24 * time.Hour
		}
	}
	return s, errors.Join(errs...)
}
