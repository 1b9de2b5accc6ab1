// Command usage-reconcile recomputes a bucket's hourly and daily usage snapshots for one UTC day
// from the running counters the snapshots keep and the bucket item itself: the repair after
// the aggregator's event source mapping gave stream records up (its on-failure destination, the
// DLQ, received their shard and sequence range). See package usage, "Records given up on".
//
//	go run ./cmd/usage-reconcile -table rate_limits -entity key-1 -resource gpt-4 -day 2026-11-26 [-dry-run]
//
// It prints one JSON line per window of the day with usage: the snapshot as stored ("was"),
// what it should hold ("now", whole tokens and millitokens) and whether that differs
// ("changed"); then writes the changed ones, each on the condition that the aggregator did not
// write it meanwhile (if it did, the command fails and can simply be run again). With -dry-run
// it writes nothing. Run it for each entity+resource and day the given-up records touched
// (their keys are in the stream within 24 hours; otherwise every bucket of the day's usage).
//
// AWS configuration comes from the usual sources (environment, shared config, role);
// AWS_ENDPOINT_URL_DYNAMODB points it at DynamoDB Local. TABLE_NAME is the default -table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "usage-reconcile:", err)
		os.Exit(1)
	}
}

// line is one printed window.
type line struct {
	EntityID    string    `json:"entity_id"`
	Resource    string    `json:"resource"`
	Window      string    `json:"window"`
	WindowStart time.Time `json:"window_start"`
	Was         *snapshot `json:"was"`
	Now         *snapshot `json:"now"`
	Changed     bool      `json:"changed"`
	Written     bool      `json:"written"`
	Base        string    `json:"base"`
}

type snapshot struct {
	Counters      map[string]tokenbucket.Int128 `json:"counters"`
	MilliCounters map[string]tokenbucket.Int128 `json:"milli_counters"`
	Acquires      int64                         `json:"acquires"`
}

func toLine(s *usage.Snapshot) *snapshot {
	if s == nil {
		return nil
	}
	return &snapshot{Counters: s.Counters, MilliCounters: s.MilliCounters, Acquires: s.Acquires}
}

// run parses args, reconciles, and prints the windows to out.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("usage-reconcile", flag.ContinueOnError)
	fs.SetOutput(out)
	table := fs.String("table", getenv("TABLE_NAME"), "the limiter's table (default $TABLE_NAME)")
	entity := fs.String("entity", "", "the entity id (required)")
	resource := fs.String("resource", "", "the resource (required)")
	dayFlag := fs.String("day", "", "the UTC day, as 2026-11-26 (required)")
	dryRun := fs.Bool("dry-run", false, "print what would change; write nothing")
	retention := fs.Duration("retention", usage.DefaultRetention, "snapshot retention after the window ends (the aggregator's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var missing []error
	for name, v := range map[string]string{"table": *table, "entity": *entity, "resource": *resource, "day": *dayFlag} {
		if v == "" {
			missing = append(missing, fmt.Errorf("-%s is required", name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return err
	}
	day, err := time.Parse(time.DateOnly, *dayFlag)
	if err != nil {
		return fmt.Errorf("-day %q: want a date such as 2026-11-26", *dayFlag)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" {
			o.DisableValidateResponseChecksum = true // DynamoDB Local's error replies carry no CRC32
		}
	})
	rec := usage.NewReconciler(storage.New(client, *table), *retention)
	res, err := rec.Reconcile(ctx, *entity, *resource, day, *dryRun)
	if res != nil {
		enc := json.NewEncoder(out)
		for _, f := range res.Windows {
			l := line{EntityID: res.EntityID, Resource: res.Resource, Window: string(f.Window), WindowStart: f.WindowStart,
				Was: toLine(f.Was), Now: toLine(f.Now), Changed: f.Changed, Written: f.Changed && !*dryRun && err == nil, Base: res.Base}
			if encErr := enc.Encode(l); encErr != nil {
				return encErr
			}
		}
	}
	return err
}
