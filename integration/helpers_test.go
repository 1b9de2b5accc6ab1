// Package integration tests the built artefacts: the functions' bootstrap binaries under the
// Lambda Runtime Interface Emulator, the devstack command, and benchmarks of the HTTP stack
// against the library and a raw UpdateItem (docs/benchmarks-http.md).
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddblocal"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/stacktest"
)

// TestMain runs the tests with a DynamoDB Local (ddbtest) and removes what they built.
func TestMain(m *testing.M) {
	stop, err := ddbtest.Ensure()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddbtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, dir := range tempDirs {
		_ = os.RemoveAll(dir)
	}
	stop()
	os.Exit(code)
}

// tempDirs are the folders the tests built into, removed after the run.
var tempDirs []string

// tempDir makes a folder removed after the run.
func tempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
}

// RIEVersion is the Runtime Interface Emulator the tests install (only a pseudo-version is
// published).
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

// EnvRIE names an aws-lambda-rie binary to use instead of installing one.
const EnvRIE = "ZL_RIE"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	rieOnce   sync.Once
	riePath   string
	rieErr    error
)

// repoRoot is the module root, two levels up from this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// bootstraps builds the acquire and admin functions as Lambda builds them (linux,
// CGO_ENABLED=0, -tags lambda.norpc, stripped) for this machine's architecture, which the
// emulator runs on, and returns the folder holding <function>/bootstrap.
func bootstraps(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = tempDir("zl-bootstrap-")
		if buildErr != nil {
			return
		}
		for _, fn := range []string{"acquire", "admin"} {
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
				"-o", filepath.Join(buildDir, fn, "bootstrap"), "./functions/"+fn)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("cannot build the %s bootstrap (go build ./functions/%s): %w\n%s", fn, fn, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// rie returns the emulator: $ZL_RIE, .local/bin/aws-lambda-rie (make rie), or one installed
// now with go install into a temporary GOBIN. It fails the test, never skips it, when none can
// be had.
func rie(t testing.TB) string {
	t.Helper()
	rieOnce.Do(func() {
		if p := os.Getenv(EnvRIE); p != "" {
			riePath = p
			return
		}
		if p := filepath.Join(repoRoot(t), ".local", "bin", "aws-lambda-rie"); fileExists(p) {
			riePath = p
			return
		}
		dir, err := tempDir("zl-rie-")
		if err != nil {
			rieErr = err
			return
		}
		cmd := exec.Command("go", "install", "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+RIEVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			rieErr = fmt.Errorf("cannot install the Lambda Runtime Interface Emulator (go install ...aws-lambda-rie@%s; or set %s, or run make rie): %w\n%s", RIEVersion, EnvRIE, err, out)
			return
		}
		riePath = filepath.Join(dir, "aws-lambda-rie")
	})
	if rieErr != nil {
		t.Fatal(rieErr)
	}
	return riePath
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func freePort(t testing.TB) int {
	t.Helper()
	port, err := ddblocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// emulated is one function running under the emulator.
type emulated struct {
	url     string // the Invoke endpoint
	log     *stacktest.Buffer
	started time.Time
}

// startFunction runs bootstrap under the emulator against table in the test's DynamoDB Local,
// as Lambda would run it (TABLE_NAME, LOG_LEVEL, AWS credentials and region in the
// environment; AWS_ENDPOINT_URL_DYNAMODB for the local endpoint).
func startFunction(t testing.TB, name, bootstrap, table string) *emulated {
	t.Helper()
	api, rapid := freePort(t), freePort(t)
	e := &emulated{url: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", api), log: &stacktest.Buffer{}}
	cmd := exec.Command(rie(t), "--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", api),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", rapid), bootstrap)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_NAME=" + name, "TABLE_NAME=" + table, "LOG_LEVEL=INFO",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbtest.Endpoint(t)}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	e.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s emulator log:\n%s", name, e.log.String())
		}
	})
	// The emulator answers once it listens; the function starts on the first invoke.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", api), 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator for %s does not listen: %v\n%s", name, err, e.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

// invoke sends one payload and returns the function's answer. Invokes of one emulator must
// not overlap (it serves one at a time).
func (e *emulated) invoke(t testing.TB, payload []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("invoke: HTTP %d %s", resp.StatusCode, out.String())
	}
	if strings.Contains(out.String(), `"errorMessage"`) {
		t.Fatalf("function error: %s", out.String())
	}
	return out.Bytes()
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// initDuration returns the function's init time as the emulator reports it.
func (e *emulated) initDuration(t testing.TB) time.Duration {
	t.Helper()
	m := initReport.FindStringSubmatch(e.log.String())
	if m == nil {
		t.Fatalf("no INIT REPORT in the emulator log:\n%s", e.log.String())
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}
