// Command loadtest puts the local stack under load and checks, from DynamoDB itself, that the
// limiter kept its promises: nothing admitted beyond the exact token-bucket bound, no token a
// caller was told it took missing from the table, none charged twice, no 5xx on a healthy
// table. `make loadtest` runs it.
//
//	loadtest [-clients 64] [-duration 10s] [-scenarios hot,refill,…] [-faults lost=0.05,…]
//
// It starts DynamoDB Local, a fault proxy in front of it (package internal/faultproxy) and the
// stack (bin/devstack, as `make run` serves it) pointed at the proxy, then runs each scenario
// with fresh entities:
//
//   - hot: every client takes 1 token from one bucket (capacity 500, refill 1/day);
//   - refill: the same on a small, fast-refilling bucket (capacity 20 or -refill-capacity, 100/s);
//   - cascade: 16 children that cascade to one parent; the parent's limit binds;
//   - leases: leases with a request id, 30% rolled back, the rest adjusted (−50…+200) and
//     committed, every call retried while its answer is ambiguous;
//   - restart: leases whose adjusts are cut by killing the stack (SIGKILL), settled after a
//     restart from the new process;
//   - badinput: malformed requests; each must be a 4xx with a JSON error, and change nothing.
//
// What callers were told is kept as an interval (an answer lost or 5xx may or may not have
// applied) and compared with the bucket's consumed counter read straight from DynamoDB. Faults
// are injected only while scenarios run. The exit status is 1 when any invariant is broken.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddblocal"
	"github.com/zeroae/zae-limiter-go/internal/faultproxy"
)

// scenarioFunc runs one scenario against e.
type scenarioFunc func(ctx context.Context, e *env, o options) (*result, error)

func scenarios() map[string]scenarioFunc {
	return map[string]scenarioFunc{
		"hot": scenarioHot, "refill": scenarioRefill, "cascade": scenarioCascade,
		"leases": scenarioLeases, "restart": scenarioRestart, "badinput": scenarioBadInput,
	}
}

const allScenarios = "hot,refill,cascade,leases,restart,badinput"

// config is the command line.
type config struct {
	opts      options
	names     []string
	rates     map[faultproxy.Kind]float64
	delay     time.Duration
	seed      uint64
	stackBin  string
	ddb       string
	out       string
	logDir    string
	tableName string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	results, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if !allOK(results, cfg.opts.faulty) {
		fmt.Fprintln(os.Stderr, "loadtest: an invariant was broken (see the table)")
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.opts.clients, "clients", 64, "concurrent clients")
	fs.DurationVar(&c.opts.duration, "duration", 10*time.Second, "how long each scenario runs at most")
	fs.IntVar(&c.opts.ops, "ops", 1_000_000, "how many operations each scenario starts at most")
	fs.StringVar(&c.opts.failureMode, "failure-mode", "fail_closed", "failure_mode of every acquire: fail_closed or fail_open")
	fs.Int64Var(&c.opts.refillCapacity, "refill-capacity", 20, "capacity of the refill scenario's bucket, which refills 100 tokens/s")
	names := fs.String("scenarios", allScenarios, "comma-separated scenarios to run")
	faults := fs.String("faults", "", "fault rates per DynamoDB request, e.g. lost=0.05,error=0.02,throttle=0.05,conflict=0.05,delay=0.01")
	fs.DurationVar(&c.delay, "delay", 200*time.Millisecond, "how long a delay fault holds a request")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the fault sequence")
	fs.StringVar(&c.stackBin, "stack", "bin/devstack", "the local stack binary (make devstack builds it)")
	fs.StringVar(&c.ddb, "ddb", "", "DynamoDB endpoint to use (default: start DynamoDB Local)")
	fs.StringVar(&c.out, "out", "", "also append the table (Markdown) to this file")
	fs.StringVar(&c.logDir, "log-dir", ".local", "folder for the stack's log")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.opts.clients < 1 || c.opts.ops < 1 || c.opts.duration <= 0 || c.opts.refillCapacity < 1 {
		return c, fmt.Errorf("-clients, -ops, -duration and -refill-capacity must be positive")
	}
	if c.opts.failureMode != "fail_closed" && c.opts.failureMode != "fail_open" {
		return c, fmt.Errorf("-failure-mode %q: want fail_closed or fail_open", c.opts.failureMode)
	}
	known := scenarios()
	for _, n := range strings.Split(*names, ",") {
		n = strings.TrimSpace(n)
		if _, ok := known[n]; !ok {
			return c, fmt.Errorf("unknown scenario %q (want some of %s)", n, allScenarios)
		}
		c.names = append(c.names, n)
	}
	var err error
	if c.rates, err = faultproxy.ParseRates(*faults); err != nil {
		return c, err
	}
	for _, r := range c.rates {
		c.opts.faulty = c.opts.faulty || r > 0
	}
	return c, nil
}

// allOK reports whether every scenario kept every invariant.
func allOK(results []*result, faulty bool) bool {
	for _, r := range results {
		if !r.ok(faulty) {
			return false
		}
	}
	return true
}

// run sets up DynamoDB, the proxy and the stack, runs the scenarios and prints the table.
func run(ctx context.Context, cfg config, stdout io.Writer) ([]*result, error) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return nil, err
	}
	cfg.opts.runID = randomID()
	cfg.tableName = "loadtest-" + cfg.opts.runID
	ddb := cfg.ddb
	if ddb == "" {
		var stopDDB func()
		if ddb, stopDDB, err = ddblocal.Start(); err != nil {
			return nil, err
		}
		defer stopDDB()
	}
	proxy, err := faultproxy.New(faultproxy.Config{Upstream: ddb, Rates: cfg.rates, Delay: cfg.delay, Seed: cfg.seed})
	if err != nil {
		return nil, err
	}
	proxy.SetPaused(true)
	proxyURL, stopProxy, err := serveProxy(proxy)
	if err != nil {
		return nil, err
	}
	defer stopProxy()
	port, err := ddblocal.FreePort()
	if err != nil {
		return nil, err
	}
	bin := cfg.stackBin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	logDir := cfg.logDir
	if !filepath.IsAbs(logDir) {
		logDir = filepath.Join(root, logDir)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	st := &stackProcess{bin: bin, table: cfg.tableName, ddbURL: proxyURL, port: port,
		logPath: filepath.Join(logDir, "loadtest-stack.log")}
	if err := st.start(ctx); err != nil {
		return nil, err
	}
	defer st.kill()
	e := &env{url: st.url(), table: cfg.tableName, direct: directClient(ddb), proxy: proxy, stack: st}
	fmt.Fprintf(stdout, "loadtest: %d clients, at most %s or %d operations per scenario, faults %s, %s\n\n",
		cfg.opts.clients, cfg.opts.duration, cfg.opts.ops, faultString(cfg.rates), cfg.opts.failureMode)
	var results []*result
	known := scenarios()
	for _, name := range cfg.names {
		before := proxy.InjectedByKind()
		res, err := known[name](ctx, e, cfg.opts)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
		if res.Faults == "" {
			res.Faults = diffFaults(before, proxy.InjectedByKind())
		}
		results = append(results, res)
	}
	writeTable(stdout, results, cfg.opts.faulty)
	fmt.Fprintln(stdout)
	for _, r := range results {
		fmt.Fprintf(stdout, "- %s faults: %s\n", r.Name, r.Faults)
	}
	if cfg.out != "" {
		if err := appendReport(cfg, results); err != nil {
			return nil, err
		}
	}
	return results, nil
}

func appendReport(cfg config, results []*result) error {
	f, err := os.OpenFile(cfg.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n`loadtest -clients %d -duration %s -faults %q -failure-mode %s`, %s:\n\n",
		cfg.opts.clients, cfg.opts.duration, faultString(cfg.rates), cfg.opts.failureMode, time.Now().UTC().Format(time.DateOnly))
	writeTable(f, results, cfg.opts.faulty)
	return nil
}

func faultString(rates map[faultproxy.Kind]float64) string {
	var parts []string
	for _, k := range faultproxy.Kinds() {
		if rates[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", k, rates[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

func diffFaults(before, after map[faultproxy.Kind]int) string {
	var parts []string
	for _, k := range faultproxy.Kinds() {
		if d := after[k] - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, d))
		}
	}
	if len(parts) == 0 {
		return "none injected"
	}
	return strings.Join(parts, ", ")
}

// httpClient is the clients' HTTP client: enough idle connections for every client, and a
// timeout well past the stack's own retries.
func httpClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
