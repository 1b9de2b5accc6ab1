package ddblocal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	pid, err := ServerPID(ep)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), "DynamoDBLocal") {
		t.Errorf("ServerPID(%s) = %d, whose command line is %q", ep, pid, cmdline)
	}
	if cpu, err := ProcessCPU(pid); err != nil || cpu <= 0 {
		t.Errorf("ProcessCPU(%d) = %v, %v; want the JVM's start-up CPU time (> 0)", pid, cpu, err)
	}
	stop()
	if _, err := ServerPID(ep); err == nil {
		t.Errorf("ServerPID(%s) found a process after stop", ep)
	}
	if err := WaitReady(ep, 200*time.Millisecond); err == nil {
		t.Errorf("%s still answers after stop", ep)
	}
}
