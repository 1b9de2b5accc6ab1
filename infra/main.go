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

func run() error {
	app := awscdk.NewApp(nil)
	props, err := limiterstack.PropsFromContext(app.Node(), defaultAssetRoot())
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

// defaultAssetRoot returns bin/ of the repository: the nearest parent of the working directory
// holding cdk.json (the CLI runs the app from infra/), or ../bin when none is found.
func defaultAssetRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "bin")
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cdk.json")); err == nil {
			return filepath.Join(d, "bin")
		}
		if filepath.Dir(d) == d {
			return filepath.Join("..", "bin")
		}
	}
}
