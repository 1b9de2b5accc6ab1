// Command infra is the zae-limiter CDK app: `cdk synth` (see cdk.json at the repository root)
// runs it to write the CloudFormation template of the limiter stack to cdk.out.
//
// Settings come from CDK context (cdk.json or `cdk -c key=value`); see infra/README.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/zeroae/zae-limiter-go/infra/limiterstack"
)

// Context keys read by the app itself (the stack's own keys are in limiterstack).
const (
	ctxStackName = "stackName"
	ctxCdkNag    = "cdkNag"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		jsii.Close()
		os.Exit(1)
	}
	jsii.Close()
}

func run() (err error) {
	// A construct that rejects its input throws in the jsii kernel, which reaches Go as a panic:
	// report its message as the app's error instead of a goroutine dump.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("synthesis failed: %v", r)
		}
	}()
	// The CLI hands the app paths relative to the folder holding cdk.json: CDK_OUTDIR,
	// CDK_ERROR_FILE (where a construct error is written) and CDK_PERF_COUNTERS_FILE (written
	// when synthesis takes 10 s or more, which is every run on a loaded 2-core machine). cdk.json
	// runs the app from there, but `cd infra && go run .` and older checkouts do not: work from
	// the repository root before the jsii kernel starts, so every such path resolves.
	root := repoRoot()
	if root != "" {
		if err := os.Chdir(root); err != nil {
			return fmt.Errorf("changing to the repository root %s: %w", root, err)
		}
	}
	app := awscdk.NewApp(nil)
	assets := filepath.Join("..", "bin")
	if root != "" {
		assets = filepath.Join(root, "bin")
	}
	props, err := limiterstack.PropsFromContext(app.Node(), assets)
	if err != nil {
		return err
	}
	if props.AssetRoot, err = filepath.Abs(props.AssetRoot); err != nil {
		return err
	}
	stackName := "ZaeLimiter"
	if v, ok := app.Node().TryGetContext(jsii.String(ctxStackName)).(string); ok && v != "" {
		stackName = v
	}
	if _, err := limiterstack.New(app, stackName, props); err != nil {
		return err
	}
	nag := true
	switch v := app.Node().TryGetContext(jsii.String(ctxCdkNag)).(type) {
	case bool:
		nag = v
	case string:
		nag = v != "false"
	}
	if nag {
		limiterstack.CheckAwsSolutions(app)
	}
	app.Synth(nil)
	return nil
}

// repoRoot returns the nearest parent of the working directory holding cdk.json (the CLI runs
// the app from infra/), or "" when there is none.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cdk.json")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
