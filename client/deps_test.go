package client_test

import (
	"slices"
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/depcheck"
)

// TestClientImportsOnlyWireTypes keeps the client light: a Go application that only calls the
// API compiles in the wire types (shared/wire), the SigV4 signer and the Lambda SDK, never the
// limiter, its storage or the DynamoDB SDK.
func TestClientImportsOnlyWireTypes(t *testing.T) {
	deps := depcheck.Deps(t, ".")
	const mod = "github.com/zeroae/zae-limiter-go/"
	bad := depcheck.Forbidden(deps, []string{
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
	})
	if len(bad) > 0 {
		t.Errorf("package client depends on %d packages it must not (a client needs only shared/wire):\n%v", len(bad), bad)
	}
	if !slices.Contains(deps, mod+"shared/wire") {
		t.Errorf("package client does not import shared/wire")
	}
}
