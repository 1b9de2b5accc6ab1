package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

var (
	devstackOnce sync.Once
	devstackBin  string
	devstackErr  error
)

func devstack(t *testing.T) string {
	t.Helper()
	devstackOnce.Do(func() {
		dir, err := tempDir("zl-devstack-")
		if err != nil {
			devstackErr = err
			return
		}
		devstackBin = filepath.Join(dir, "devstack")
		cmd := exec.Command("go", "build", "-o", devstackBin, "./cmd/devstack")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			devstackErr = fmt.Errorf("build cmd/devstack: %w\n%s", err, out)
		}
	})
	if devstackErr != nil {
		t.Fatal(devstackErr)
	}
	return devstackBin
}

// running is the devstack command running.
type running struct {
	cmd   *exec.Cmd
	lines chan map[string]any
	mu    sync.Mutex
	seen  []string // log messages in order
	done  chan error
}

func startDevstack(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(devstack(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, lines: make(chan map[string]any, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("a log line is not JSON: %s", sc.Text())
				continue
			}
			r.mu.Lock()
			r.seen = append(r.seen, fmt.Sprint(line["msg"]))
			r.mu.Unlock()
			select {
			case r.lines <- line:
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		r.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	return r
}

// waitFor returns the first log line with message msg.
func (r *running) waitFor(t *testing.T, msg string, within time.Duration) map[string]any {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case line := <-r.lines:
			if line["msg"] == msg {
				return line
			}
		case err := <-r.done:
			t.Fatalf("devstack exited before %q: %v", msg, err)
		case <-timeout:
			t.Fatalf("no %q log line within %s", msg, within)
		}
	}
}

// stop sends sig and waits for a clean exit.
func (r *running) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("devstack exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("devstack did not stop within 20 s")
	}
}

func (r *running) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func baseEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_LEVEL=INFO"}
	for _, k := range []string{"GOCACHE", "GOPATH", "GOMODCACHE", "JAVA_HOME", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

func useAPI(t *testing.T, url string) {
	t.Helper()
	c, err := client.NewHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = c.Do(ctx, limiter.AcquireRequest{EntityID: "k", Resource: "r", Limits: []limiter.Limit{limiter.PerMinute("rpm", 10)},
		Consume: map[string]int64{"rpm": 1}}, func(context.Context, *client.Lease) error { return nil })
	if err != nil {
		t.Fatalf("acquire through the local stack: %v", err)
	}
}

// With AWS_ENDPOINT_URL_DYNAMODB set, devstack uses that DynamoDB, creates the table, serves
// the API, and stops cleanly on SIGINT.
func TestDevstackWithEndpoint(t *testing.T) {
	table := ddbtest.TableName(t)
	port := freePort(t)
	r := startDevstack(t, baseEnv("AWS_ENDPOINT_URL_DYNAMODB="+ddbtest.Endpoint(t), "AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1", "TABLE_NAME="+table, fmt.Sprintf("PORT=%d", port)))
	line := r.waitFor(t, "serving", 30*time.Second)
	if line["url"] != fmt.Sprintf("http://127.0.0.1:%d", port) || line["table"] != table {
		t.Fatalf("serving line %v", line)
	}
	useAPI(t, fmt.Sprint(line["url"]))
	r.stop(t, os.Interrupt)
	if msgs := r.messages(); !contains(msgs, "shutting down") || contains(msgs, "starting DynamoDB Local") {
		t.Fatalf("log: %v", msgs)
	}
	// The table it created is there.
	if _, err := limiter.New(ddbtest.Client(t), table).GetLimits(context.Background(), limiter.SystemDefault()); !errors.Is(err, limiter.ErrLimitsNotFound) {
		t.Fatalf("table %s: %v", table, err)
	}

	// invoke runs one function on one event file against the same DynamoDB.
	cmd := exec.Command(devstack(t), "invoke", "-fn", "admin", "-table", table, "events/admin/put-entity.json")
	cmd.Dir = repoRoot(t)
	cmd.Env = baseEnv("AWS_ENDPOINT_URL_DYNAMODB="+ddbtest.Endpoint(t), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), `"statusCode":201`) {
		t.Fatalf("invoke: %v %s", err, out)
	}
}

// Without an endpoint, devstack starts DynamoDB Local itself and, on SIGTERM, stops the
// server first and DynamoDB Local after.
func TestDevstackOwnDynamoDB(t *testing.T) {
	port, ddbPort := freePort(t), freePort(t)
	r := startDevstack(t, baseEnv(fmt.Sprintf("PORT=%d", port)), "-ddb-port", fmt.Sprint(ddbPort), "-table", "zl-own")
	line := r.waitFor(t, "serving", 90*time.Second)
	if line["dynamodb"] != fmt.Sprintf("http://127.0.0.1:%d", ddbPort) {
		t.Fatalf("serving line %v", line)
	}
	useAPI(t, fmt.Sprint(line["url"]))
	r.stop(t, syscall.SIGTERM)
	msgs := r.messages()
	down, stopping := index(msgs, "shutting down"), index(msgs, "stopping DynamoDB Local")
	if index(msgs, "starting DynamoDB Local") < 0 || down < 0 || stopping < down {
		t.Fatalf("log order: %v", msgs)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ddbPort), 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("DynamoDB Local still listens after devstack stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
		t.Fatal("the API still listens")
	}
}

func index(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func contains(xs []string, x string) bool { return index(xs, x) >= 0 }
