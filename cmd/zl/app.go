package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Exit codes (see the package doc).
const (
	exitOK          = 0
	exitError       = 1
	exitBadInput    = 2
	exitRefused     = 3
	exitUnavailable = 4
	exitNotFound    = 5
	exitChanges     = 6
)

// Environment variables zl reads.
const (
	envEndpoint = "ZL_ENDPOINT"
	envStack    = "ZL_STACK"
)

// env is the process's outside world, replaced in tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is a node of the command tree: a group (sub) or a leaf (run).
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	long    string
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, a *app, args []string) error
	sub     []*command
	serves  bool // runs until interrupted: --timeout does not apply
}

// app is one invocation: the global settings and the outside world.
type app struct {
	env
	endpoint, stack, region, profile string
	output                           string
	sign                             string
	timeout                          time.Duration
	// newAWSConfig loads the AWS configuration (replaced in tests).
	newAWSConfig func(ctx context.Context, region, profile string) (aws.Config, error)
}

// usageError is bad input on the command line or in a file: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func badInput(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// changesPending makes plan --detailed-exitcode exit 6.
var errChangesPending = errors.New("changes pending")

func run(ctx context.Context, args []string, e env) int {
	a := &app{env: e, newAWSConfig: loadAWSConfig}
	root := commands()
	cmd, rest, path := root, args, []string{"zl"}
	for len(rest) > 0 && cmd.sub != nil {
		next := find(cmd.sub, rest[0])
		if next == nil {
			if rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help" {
				printGroup(e.stdout, path, cmd)
				return exitOK
			}
			fmt.Fprintf(e.stderr, "zl: unknown command %q\n\n", strings.Join(append(path[1:], rest[0]), " "))
			printGroup(e.stderr, path, cmd)
			return exitBadInput
		}
		cmd, rest, path = next, rest[1:], append(path, next.name)
	}
	if cmd.sub != nil {
		printGroup(e.stderr, path, cmd)
		return exitBadInput
	}
	fs := flag.NewFlagSet(strings.Join(path, " "), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	// Flags may follow positional arguments: parse them apart.
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printLeaf(e.stdout, path, cmd, fs)
				return exitOK
			}
			fmt.Fprintf(e.stderr, "zl: %v\n\n", err)
			printLeaf(e.stderr, path, cmd, fs)
			return exitBadInput
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if a.output != "table" && a.output != "json" {
		fmt.Fprintf(e.stderr, "zl: --output must be table or json, got %q\n", a.output)
		return exitBadInput
	}
	if a.timeout > 0 && !cmd.serves {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	err := cmd.run(ctx, a, positional)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errChangesPending) {
		fmt.Fprintf(e.stderr, "zl: %v\n", err)
	}
	return code
}

func find(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	return nil
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var (
		ue  *usageError
		ve  *wire.ValidationError
		rle *wire.RateLimitExceededError
		un  *wire.UnavailableError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errChangesPending):
		return exitChanges
	case errors.As(err, &ue), errors.As(err, &ve):
		return exitBadInput
	case errors.As(err, &rle):
		return exitRefused
	case errors.As(err, &un), errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable
	case errors.Is(err, wire.ErrEntityNotFound), errors.Is(err, wire.ErrLimitsNotFound), errors.Is(err, wire.ErrParentNotFound):
		return exitNotFound
	}
	return exitError
}

func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.endpoint, "endpoint", "", "API base URL (env "+envEndpoint+"); default: the ApiUrl output of --stack")
	fs.StringVar(&a.stack, "stack", "", "CloudFormation stack of the deployment (env "+envStack+")")
	fs.StringVar(&a.region, "region", "", "AWS region (default: the SDK's, AWS_REGION)")
	fs.StringVar(&a.profile, "profile", "", "AWS shared-config profile (default: the SDK's, AWS_PROFILE)")
	fs.StringVar(&a.output, "output", "table", "output format: table (for people) or json (for scripts)")
	fs.StringVar(&a.sign, "sign", "auto", "SigV4-sign requests: auto (unless the endpoint is on loopback), always or never")
	fs.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up after this long (exit 4)")
}

func loadAWSConfig(ctx context.Context, region, profile string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// resolveEndpoint returns the API's base URL: --endpoint, ZL_ENDPOINT, or the stack's ApiUrl.
func (a *app) resolveEndpoint(ctx context.Context) (string, error) {
	if a.endpoint != "" {
		return a.endpoint, nil
	}
	if ep := a.getenv(envEndpoint); ep != "" {
		return ep, nil
	}
	name := a.stackName()
	if name == "" {
		return "", badInput("no endpoint: give --endpoint, set %s, or name the stack with --stack or %s (for `make run`: --endpoint http://127.0.0.1:8080)", envEndpoint, envStack)
	}
	st, err := a.describeStack(ctx, name)
	if err != nil {
		return "", err
	}
	if st.Outputs["ApiUrl"] == "" {
		return "", fmt.Errorf("stack %s has no ApiUrl output (status %s)", name, st.Status)
	}
	return st.Outputs["ApiUrl"], nil
}

func (a *app) stackName() string {
	if a.stack != "" {
		return a.stack
	}
	return a.getenv(envStack)
}

// loopback reports whether the URL's host is on this machine.
func loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// shouldSign applies --sign to an endpoint.
func (a *app) shouldSign(endpoint string) (bool, error) {
	switch a.sign {
	case "auto":
		return !loopback(endpoint), nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, badInput("--sign must be auto, always or never, got %q", a.sign)
}

// client returns the API client (and its endpoint).
func (a *app) client(ctx context.Context) (*client.Client, string, error) {
	ep, err := a.resolveEndpoint(ctx)
	if err != nil {
		return nil, "", err
	}
	sign, err := a.shouldSign(ep)
	if err != nil {
		return nil, "", err
	}
	var opts []client.Option
	if sign {
		cfg, err := a.newAWSConfig(ctx, a.region, a.profile)
		if err != nil {
			return nil, "", err
		}
		if cfg.Credentials == nil || cfg.Region == "" {
			return nil, "", badInput("signing needs AWS credentials and a region (--region, AWS_REGION); for an unsigned local stack use --sign never")
		}
		opts = append(opts, client.WithCredentials(cfg.Credentials, cfg.Region))
	}
	c, err := client.NewHTTP(ep, opts...)
	if err != nil {
		return nil, "", badInput("%v", err)
	}
	return c, ep, nil
}

// emit writes v as JSON (--output json) or calls table.
func (a *app) emit(v any, table func(w *tabwriter.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

// printGroup writes the help of a command group.
func printGroup(w io.Writer, path []string, c *command) {
	if c.long != "" {
		fmt.Fprintln(w, c.long)
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", strings.Join(path, " "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range c.sub {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", strings.Join(path, " "))
	if len(path) == 1 {
		fmt.Fprint(w, exitCodesHelp)
	}
}

const exitCodesHelp = `
Exit codes: 0 ok, 1 other error, 2 bad input, 3 refused (rate limit exceeded),
4 unavailable (no answer, 5xx, timeout), 5 not found, 6 changes pending (plan --detailed-exitcode).
`

// printLeaf writes the help of a command.
func printLeaf(w io.Writer, path []string, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags] %s\n\n%s\n", strings.Join(path, " "), c.args, c.summary)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", c.long)
	}
	fmt.Fprintln(w, "\nFlags:")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		f := fs.Lookup(n)
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  --%s\t%s%s\n", n, f.Usage, def)
	}
	_ = tw.Flush()
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
