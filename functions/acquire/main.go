// Command acquire is the acquire Lambda function: POST /v1/acquire, the lease routes and the
// availability routes behind API Gateway, and the same actions by direct invocation. See
// package acquireapi.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/internal/lambdaenv"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func main() {
	env, err := lambdaenv.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "acquire:", err)
		os.Exit(1)
	}
	lim := limiter.New(env.DynamoDB, env.Table, limiter.WithLogger(env.Log))
	router := acquireapi.New(lim, env.Log).
		Observe(httpapi.MetricsObserver(env.Metrics, env.Function, acquireapi.RouteMetrics(), time.Now))
	lambda.Start(router)
}
