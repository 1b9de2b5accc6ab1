// Package lambdaenv reads what the three Lambda functions share from their environment: the
// table, the log level, the metrics and the AWS configuration.
//
// The AWS configuration comes from the environment variables Lambda sets for the function's
// role (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), not from the
// SDK's full default chain: that chain (shared files, SSO, STS, instance metadata) is about
// 2 MB of every binary and never used in Lambda. AWS_ENDPOINT_URL_DYNAMODB, when set, points
// the DynamoDB client at another endpoint (DynamoDB Local).
package lambdaenv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

// Environment variables of the functions.
const (
	EnvTableName        = "TABLE_NAME"                // the limiter's table (required)
	EnvLogLevel         = "LOG_LEVEL"                 // DEBUG, INFO (default), WARN or ERROR
	EnvDynamoDBEndpoint = "AWS_ENDPOINT_URL_DYNAMODB" // another DynamoDB endpoint, such as DynamoDB Local
	EnvFunctionName     = "AWS_LAMBDA_FUNCTION_NAME"  // set by Lambda: the metrics' FunctionName dimension
	EnvMetricsNamespace = "METRICS_NAMESPACE"         // CloudWatch namespace (default metrics.DefaultNamespace)
)

// Env is what a function's main needs.
type Env struct {
	Table    string
	Log      *slog.Logger
	AWS      aws.Config
	DynamoDB *dynamodb.Client
	// Function is the function's name (AWS_LAMBDA_FUNCTION_NAME; "local" outside Lambda).
	Function string
	// Metrics writes EMF lines to standard output in METRICS_NAMESPACE.
	Metrics *metrics.Emitter
}

// Load reads the environment through getenv (os.Getenv in a main). It returns every problem
// it finds at once.
func Load(getenv func(string) string) (*Env, error) {
	var errs []error
	table := getenv(EnvTableName)
	if table == "" {
		errs = append(errs, fmt.Errorf("%s is not set", EnvTableName))
	}
	cfg, err := AWSConfig(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	function := getenv(EnvFunctionName)
	if function == "" {
		function = "local"
	}
	return &Env{
		Table:    table,
		Log:      NewLogger(os.Stdout, getenv(EnvLogLevel)),
		AWS:      cfg,
		DynamoDB: dynamodb.NewFromConfig(cfg, DynamoDBOptions(getenv)),
		Function: function,
		Metrics:  metrics.New(os.Stdout, getenv(EnvMetricsNamespace)),
	}, nil
}

// AWSConfig returns the AWS configuration of a function: region and credentials from the
// environment Lambda sets.
func AWSConfig(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	key, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	var errs []error
	if region == "" {
		errs = append(errs, errors.New("AWS_REGION is not set"))
	}
	if key == "" || secret == "" {
		errs = append(errs, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them for the function's role)"))
	}
	if err := errors.Join(errs...); err != nil {
		return aws.Config{}, err
	}
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, getenv("AWS_SESSION_TOKEN"))),
	}, nil
}

// DynamoDBOptions returns the client options that honour AWS_ENDPOINT_URL_DYNAMODB. Against
// such an endpoint it also turns off response checksum validation: DynamoDB Local's error
// replies carry no CRC32 header, which the SDK would otherwise report on every refused
// conditional write.
func DynamoDBOptions(getenv func(string) string) func(*dynamodb.Options) {
	endpoint := getenv(EnvDynamoDBEndpoint)
	return func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.DisableValidateResponseChecksum = true
		}
	}
}

// NewLogger returns a JSON logger writing to w at level (DEBUG, INFO, WARN or ERROR, any case;
// INFO when empty or unknown).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(strings.TrimSpace(level)))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
