// Command admin is the admin Lambda function: entities, stored limits and usage snapshots
// behind API Gateway.
// See package adminapi.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/lambdaenv"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func main() {
	env, err := lambdaenv.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
	retention, err := adminapi.AuditRetention(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
	lim := limiter.New(env.DynamoDB, env.Table, append(retention, limiter.WithLogger(env.Log))...)
	router := adminapi.ForLimiter(lim, usage.NewTableReader(env.DynamoDB, env.Table), env.Log).
		Observe(httpapi.MetricsObserver(env.Metrics, env.Function, nil, time.Now))
	lambda.Start(router)
}
