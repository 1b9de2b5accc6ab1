// Package depcheck lets a test assert what a package compiles in: it asks `go list -deps`
// for the package's whole import graph, so a test fails the day an import drags in a
// package it must not (the DynamoDB SDK into the client, anything but the standard library
// into shared/wire).
package depcheck

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Deps returns the import paths of every package pattern (such as ".", the test's own
// package) depends on, itself included, that is not in the standard library, sorted. It runs
// `go list -deps` from the test's working directory and fails the test when that fails.
func Deps(t testing.TB, pattern string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("depcheck: the go command is needed to list imports: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pattern)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("depcheck: go list -deps %s: %v\n%s", pattern, err, stderr.String())
	}
	deps := strings.Fields(string(out))
	slices.Sort(deps)
	return deps
}

// Forbidden returns the deps that are one of the forbidden import paths or lie under one
// (a forbidden "github.com/x/y" also forbids "github.com/x/y/z").
func Forbidden(deps, forbidden []string) []string {
	var bad []string
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

// ServerSide returns the import paths an API client must not compile in: the limiter, its
// storage and arithmetic, the functions and their HTTP layer, and the DynamoDB and Lambda
// runtime SDKs. Package client and the zl command need only shared/wire of these.
func ServerSide() []string {
	const mod = "github.com/zeroae/zae-limiter-go/"
	return []string{
		mod + "shared/limiter",
		mod + "shared/storage",
		mod + "shared/httpapi",
		mod + "shared/metrics",
		mod + "shared/tokenbucket",
		mod + "shared/usage",
		mod + "functions",
		"github.com/aws/aws-sdk-go-v2/service/dynamodb",
		"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams",
		"github.com/aws/aws-lambda-go",
	}
}
