package client_test

import (
	"slices"
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/depcheck"
)

// TestClientImportsOnlyWireTypes keeps the client light: a Go application that only calls the
// API compiles in the wire types (shared/wire), the SigV4 signer and the Lambda SDK, never the
// limiter, its storage, the HTTP layer of the functions or the DynamoDB SDK.
func TestClientImportsOnlyWireTypes(t *testing.T) {
	deps := depcheck.Deps(t, ".")
	if bad := depcheck.Forbidden(deps, depcheck.ServerSide()); len(bad) > 0 {
		t.Errorf("package client depends on %d packages it must not (a client needs only shared/wire):\n%v", len(bad), bad)
	}
	if !slices.Contains(deps, "github.com/zeroae/zae-limiter-go/shared/wire") {
		t.Errorf("package client does not import shared/wire")
	}
}
