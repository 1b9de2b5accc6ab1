package wire_test

import (
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/depcheck"
)

// TestWireImportsOnlyTheStandardLibrary keeps wire a leaf: everyone may import it, so it may
// import nothing of the module or beyond the standard library (its tests excepted).
func TestWireImportsOnlyTheStandardLibrary(t *testing.T) {
	deps := depcheck.Deps(t, ".")
	if want := "github.com/zeroae/zae-limiter-go/shared/wire"; len(deps) != 1 || deps[0] != want {
		t.Errorf("shared/wire depends on packages outside the standard library: %v (want only itself)", deps)
	}
}
