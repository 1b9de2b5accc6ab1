package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Environment variables of the functions.
const (
	EnvTableName = "TABLE_NAME" // the limiter's table (required)
	EnvLogLevel  = "LOG_LEVEL"  // DEBUG, INFO (default), WARN or ERROR
)

// Env is what a function's main needs, read from the environment.
type Env struct {
	Table    string
	Log      *slog.Logger
	AWS      aws.Config
	DynamoDB *dynamodb.Client
}

// LoadEnv reads TABLE_NAME and LOG_LEVEL and loads the AWS configuration the SDK's usual way
// (config.LoadDefaultConfig: the Lambda role's credentials and region, and
// AWS_ENDPOINT_URL_DYNAMODB when set).
func LoadEnv(ctx context.Context) (*Env, error) {
	table := os.Getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is not set", EnvTableName)
	}
	log := NewLogger(os.Stdout, os.Getenv(EnvLogLevel))
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return &Env{Table: table, Log: log, AWS: cfg, DynamoDB: dynamodb.NewFromConfig(cfg, LocalDynamoDB)}, nil
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

// LocalDynamoDB adjusts a DynamoDB client for DynamoDB Local when AWS_ENDPOINT_URL_DYNAMODB
// is set: DynamoDB Local's error replies carry no CRC32 header, which the SDK would otherwise
// report on every refused conditional write.
func LocalDynamoDB(o *dynamodb.Options) {
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" {
		o.DisableValidateResponseChecksum = true
	}
}
