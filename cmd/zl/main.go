// Command zl is the operator's tool for a zae-limiter deployment: entities, stored limits
// (also declaratively, from a file under version control), trying limits, usage with a
// terminal plot, the audit trail of admin changes, the status of a deployed stack, and a
// SigV4-signing local proxy that opens the usage dashboard of an IAM-authorized API.
//
//	go install github.com/zeroae/zae-limiter-go/cmd/zl@latest
//	zl --help
//
// It talks to the HTTP API through package client: to `make run`'s stack without credentials
// (a loopback endpoint is not signed), to a deployed stack with SigV4 (the AWS SDK's default
// credentials). The endpoint comes from --endpoint, else ZL_ENDPOINT, else the ApiUrl output of
// the CloudFormation stack --stack (or ZL_STACK).
//
// Exit codes: 0 success; 1 another error (a conflict, say); 2 bad input (flags, files, or a 400
// of the API); 3 refused (429: a limit is exceeded); 4 unavailable (no answer, a 5xx, a
// timeout); 5 not found (404). `zl limits plan --detailed-exitcode` exits 6 when there are
// changes to apply.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}
