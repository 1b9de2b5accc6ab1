package ddblocal

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStartAndStop starts a DynamoDB Local of its own (not the one make test shares), checks it
// answers, stops it and checks it no longer does.
func TestStartAndStop(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot() = %s, which holds no go.mod", root)
	}
	ep, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ep, time.Second); err != nil {
		stop()
		t.Fatalf("%s does not answer after Start: %v", ep, err)
	}
	stop()
	if err := WaitReady(ep, 200*time.Millisecond); err == nil {
		t.Errorf("%s still answers after stop", ep)
	}
}
