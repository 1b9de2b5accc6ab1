// Command devstack runs the whole limiter on this machine: DynamoDB Local, the table, and
// both functions behind a local API Gateway (package gateway) at http://127.0.0.1:8080, through
// the same handlers and the same payload-2.0 events as in AWS. `make run` starts it.
//
//	devstack [flags]                       serve until SIGINT or SIGTERM
//	devstack invoke -fn NAME EVENT.json    run one function on one event file, print its answer
//
// DynamoDB: when AWS_ENDPOINT_URL_DYNAMODB is set, that endpoint is used; otherwise a DynamoDB
// Local already answering on -ddb-port is used; otherwise one is started there with
// scripts/ddb-local.sh and stopped on exit. The table is created when missing.
//
// Logs are JSON on stdout. On SIGINT or SIGTERM the server stops accepting requests and
// finishes those under way, then the aggregator (if running) stops, then the DynamoDB Local it
// started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/internal/lambdaenv"
	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// options are the command's settings.
type options struct {
	addr      string
	port      int
	table     string
	ddbPort   int
	logLevel  string
	cacheTTL  time.Duration
	aggregate bool
	aggState  string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "invoke" {
		os.Exit(invokeMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	var o options
	fs := flag.NewFlagSet("devstack", flag.ExitOnError)
	o.register(fs)
	fs.StringVar(&o.addr, "addr", "127.0.0.1", "address to listen on (the API has no authorization locally: keep it on loopback)")
	fs.IntVar(&o.port, "port", envInt("PORT", 8080), "port to listen on (env PORT)")
	fs.BoolVar(&o.aggregate, "aggregate", true, "also run the aggregator on the table's stream (usage snapshots); -aggregate=false to leave it out")
	fs.StringVar(&o.aggState, "aggregator-state", ".local/aggregator-stream.json", "file where the aggregator's stream poller keeps its position")
	_ = fs.Parse(os.Args[1:])
	log := lambdaenv.NewLogger(os.Stdout, o.logLevel)
	if err := serve(o, log); err != nil {
		log.Error("devstack failed", "error", err.Error())
		os.Exit(1)
	}
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.table, "table", envString(lambdaenv.EnvTableName, "zae-limiter"), "DynamoDB table (env TABLE_NAME)")
	fs.IntVar(&o.ddbPort, "ddb-port", envInt("DDB_PORT", 8000), "port of the DynamoDB Local to use or start when AWS_ENDPOINT_URL_DYNAMODB is unset (env DDB_PORT)")
	fs.StringVar(&o.logLevel, "log-level", envString(lambdaenv.EnvLogLevel, "INFO"), "DEBUG, INFO, WARN or ERROR (env LOG_LEVEL)")
	fs.DurationVar(&o.cacheTTL, "cache-ttl", limiter.DefaultCacheTTL, "how long each function caches entities and stored limits, as in AWS (0 disables)")
}

func serve(o options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ddb, err := startDynamoDB(ctx, o.ddbPort, log)
	if err != nil {
		return err
	}
	defer ddb.stop()
	client, awsCfg, err := dynamoClient(ctx)
	if err != nil {
		return err
	}
	if err := limiter.New(client, o.table).CreateTable(ctx); err != nil {
		return fmt.Errorf("create table %s: %w", o.table, err)
	}
	// The admin function's audit retention, from its environment as in AWS.
	retention, err := adminapi.AuditRetention(os.Getenv)
	if err != nil {
		return err
	}
	stack := gateway.NewStack(gateway.Config{DynamoDB: client, Table: o.table, Log: log, AccessLog: log,
		LimiterOptions: append(retention, limiter.WithCacheTTL(o.cacheTTL))})
	srv, err := gateway.Listen(fmt.Sprintf("%s:%d", o.addr, o.port), stack)
	if err != nil {
		return err
	}
	aggDone := make(chan struct{})
	aggCtx, aggStop := context.WithCancel(context.Background())
	defer aggStop()
	switch {
	case !o.aggregate:
		close(aggDone)
	default:
		go func() {
			defer close(aggDone)
			env := gateway.AggregatorEnv{Streams: streampoller.NewClient(awsCfg), DynamoDB: client, Table: o.table,
				StatePath: o.aggState, Log: log.With("component", "aggregator")}
			if err := gateway.RunAggregator(aggCtx, env); err != nil {
				log.Error("aggregator stopped", "error", err.Error())
			}
		}()
	}
	log.Info("serving", "url", srv.URL, "dashboard", srv.URL+"/v1/system/dashboard", "table", o.table, "dynamodb", ddb.endpoint, "aggregator", o.aggregate)
	<-ctx.Done()
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serr := srv.Shutdown(shutCtx)
	aggStop()
	<-aggDone
	return serr
}

// dynamoDB is the DynamoDB in use; stop stops it when this process started it.
type dynamoDB struct {
	endpoint string
	stop     func()
}

// startDynamoDB chooses the DynamoDB endpoint and sets AWS_ENDPOINT_URL_DYNAMODB to it, so that
// config.LoadDefaultConfig finds it as a function's main would.
func startDynamoDB(ctx context.Context, port int, log *slog.Logger) (*dynamoDB, error) {
	if ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); ep != "" {
		log.Info("using DynamoDB at AWS_ENDPOINT_URL_DYNAMODB", "endpoint", ep)
		return &dynamoDB{endpoint: ep, stop: func() {}}, nil
	}
	localCredentials()
	ep := fmt.Sprintf("http://127.0.0.1:%d", port)
	os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ep)
	if answers(ctx, ep) {
		log.Info("using the DynamoDB Local already running", "endpoint", ep)
		return &dynamoDB{endpoint: ep, stop: func() {}}, nil
	}
	script, err := ddbScript()
	if err != nil {
		return nil, err
	}
	log.Info("starting DynamoDB Local", "endpoint", ep)
	cmd := exec.CommandContext(ctx, script, "start", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group: Ctrl-C in the terminal reaches this process, which stops the
	// server first and DynamoDB Local after.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local (%s start %d): %w", script, port, err)
	}
	return &dynamoDB{endpoint: ep, stop: func() {
		log.Info("stopping DynamoDB Local", "endpoint", ep)
		stop := exec.Command(script, "stop", strconv.Itoa(port))
		stop.Stdout, stop.Stderr = os.Stderr, os.Stderr
		if err := stop.Run(); err != nil {
			log.Error("stop DynamoDB Local", "error", err.Error())
		}
	}}, nil
}

// localCredentials sets placeholder credentials and a region for DynamoDB Local when the
// environment has none (DynamoDB Local accepts any).
func localCredentials() {
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", "local")
		os.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		os.Setenv("AWS_REGION", "us-east-1")
	}
}

// answers reports whether a DynamoDB endpoint answers ListTables.
func answers(ctx context.Context, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
	return err == nil
}

// dynamoClient builds the DynamoDB client as the functions do (config.LoadDefaultConfig).
func dynamoClient(ctx context.Context) (*dynamodb.Client, aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, cfg, fmt.Errorf("load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, lambdaenv.DynamoDBOptions(os.Getenv)), cfg, nil
}

// ddbScript finds scripts/ddb-local.sh above the working directory.
func ddbScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		p := filepath.Join(dir, "scripts", "ddb-local.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/ddb-local.sh not found above the working directory: run from the repository, or set AWS_ENDPOINT_URL_DYNAMODB")
		}
		dir = parent
	}
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// invokeMain runs `devstack invoke -fn NAME EVENT.json`: one function on one event (an API
// Gateway event or a direct invocation payload), against the same DynamoDB choice as the
// server. It prints the function's answer and returns the exit code.
func invokeMain(args []string, stdout, stderr io.Writer) int {
	var o options
	var fn string
	fs := flag.NewFlagSet("devstack invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	fs.StringVar(&fn, "fn", "acquire", "function: acquire or admin")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: devstack invoke [-fn acquire|admin] EVENT.json")
		return 2
	}
	log := lambdaenv.NewLogger(stderr, o.logLevel)
	out, err := invoke(o, fn, fs.Arg(0), log)
	if err != nil {
		log.Error("invoke failed", "error", err.Error())
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

func invoke(o options, fn, eventPath string, log *slog.Logger) ([]byte, error) {
	payload, err := os.ReadFile(eventPath)
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	ctx := context.Background()
	ddb, err := startDynamoDB(ctx, o.ddbPort, log)
	if err != nil {
		return nil, err
	}
	defer ddb.stop()
	client, _, err := dynamoClient(ctx)
	if err != nil {
		return nil, err
	}
	if err := limiter.New(client, o.table).CreateTable(ctx); err != nil {
		return nil, fmt.Errorf("create table %s: %w", o.table, err)
	}
	for _, f := range gateway.Functions(gateway.Config{DynamoDB: client, Table: o.table, Log: log}) {
		if f.Name == fn {
			out, err := f.Handler.Invoke(ctx, payload)
			if err != nil {
				return nil, fmt.Errorf("function %s: %w", fn, err)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("no function %q: acquire or admin", fn)
}
