package main

import (
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/depcheck"
)

// TestZLImportsNoServerSide keeps the operators' CLI a client of the API: it speaks to the
// limiter through package client and shared/wire only, without the limiter or the DynamoDB SDK.
func TestZLImportsNoServerSide(t *testing.T) {
	if bad := depcheck.Forbidden(depcheck.Deps(t, "."), depcheck.ServerSide()); len(bad) > 0 {
		t.Errorf("cmd/zl depends on %d packages it must not (a client of the API needs only shared/wire):\n%v", len(bad), bad)
	}
}
