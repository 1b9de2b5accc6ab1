// Package ddbtest runs tests against AWS's DynamoDB Local: it starts the server when none is
// given, hands out clients and fresh tables, and wraps clients with SDK middleware that counts
// requests and consumed capacity (Meter) or injects faults (Faults). There is no fake DynamoDB.
package ddbtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/internal/ddblocal"
	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// EnvEndpoint names the variable that points tests at a running DynamoDB Local. `make test`
// sets it to the instance it starts; without it each test binary starts its own.
const EnvEndpoint = "ZL_DYNAMODB_ENDPOINT"

// Main runs a package's tests with a DynamoDB Local: the one EnvEndpoint names, or one it starts
// and stops. Call it from TestMain. It exits the process with the tests' status.
func Main(m *testing.M) {
	stop, err := Ensure()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddbtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// Ensure makes EnvEndpoint point at a DynamoDB Local that answers, starting one when it is
// unset. The returned func stops what Ensure started.
func Ensure() (stop func(), err error) {
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		if err := ddblocal.WaitReady(ep, 5*time.Second); err != nil {
			return nil, fmt.Errorf("%s=%s does not answer: %w", EnvEndpoint, ep, err)
		}
		return func() {}, nil
	}
	ep, stop, err := ddblocal.Start()
	if err != nil {
		return nil, err
	}
	os.Setenv(EnvEndpoint, ep)
	return stop, nil
}

// Endpoint returns the DynamoDB Local endpoint; it fails the test when Main or Ensure did not
// provide one.
func Endpoint(t testing.TB) string {
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		t.Fatalf("%s is not set: call ddbtest.Main from TestMain", EnvEndpoint)
	}
	return ep
}

// NewClient returns a DynamoDB client for endpoint with static credentials. Options (such as a
// Meter's or Faults' Option) are applied after the defaults.
func NewClient(endpoint string, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	base := func(o *dynamodb.Options) {
		o.Region = "us-east-1"
		o.BaseEndpoint = aws.String(endpoint)
		o.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
		// Error replies of DynamoDB Local carry no CRC32 header.
		o.DisableValidateResponseChecksum = true
	}
	return dynamodb.New(dynamodb.Options{}, append([]func(*dynamodb.Options){base}, opts...)...)
}

// Client returns a client for the test's DynamoDB Local.
func Client(t testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return NewClient(Endpoint(t), opts...)
}

// TableName returns a fresh table name for the test.
func TableName(t testing.TB) string {
	b := randid.Bytes(4)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 200 {
		name = name[:200]
	}
	return name + "-" + hex.EncodeToString(b)
}

// NewTable creates a fresh limiter table through client and deletes it when the test ends.
func NewTable(t testing.TB, client *dynamodb.Client) *storage.Table {
	t.Helper()
	tbl := storage.New(client, TableName(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tbl.CreateTable(ctx); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(tbl.Name())})
	})
	return tbl
}
