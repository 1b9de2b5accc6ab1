package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
)

func readEvent(t testing.TB, fn, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "events", fn, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func apiAnswer(t testing.TB, out []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("not an API Gateway answer: %s", out)
	}
	return r
}

func directAnswer(t testing.TB, out []byte) httpapi.DirectResponse {
	t.Helper()
	var r httpapi.DirectResponse
	if err := json.Unmarshal(out, &r); err != nil || r.Status == 0 {
		t.Fatalf("not a direct answer: %s", out)
	}
	return r
}

// The real bootstrap binaries, built as for Lambda, answer the sample events under the Lambda
// Runtime Interface Emulator: API Gateway events and direct invocations through one handler.
func TestBootstrapsUnderEmulator(t *testing.T) {
	dir := bootstraps(t)
	table := ddbtest.NewTable(t, ddbtest.Client(t)).Name()

	admin := startFunction(t, "admin", filepath.Join(dir, "admin", "bootstrap"), table)
	for _, c := range []struct {
		event  string
		status int
	}{{"put-entity.json", 201}, {"put-child-entity.json", 201}, {"get-entity.json", 200}, {"children.json", 200},
		{"put-entity-limits.json", 201}, {"get-entity-limits.json", 200}} {
		r := apiAnswer(t, admin.invoke(t, readEvent(t, "admin", c.event)))
		if r.StatusCode != c.status {
			t.Fatalf("admin %s: %d %s", c.event, r.StatusCode, r.Body)
		}
	}

	acquire := startFunction(t, "acquire", filepath.Join(dir, "acquire", "bootstrap"), table)
	r := apiAnswer(t, acquire.invoke(t, readEvent(t, "acquire", "acquire.json")))
	var lease httpapi.AcquireResponse
	if err := json.Unmarshal([]byte(r.Body), &lease); err != nil || r.StatusCode != 200 || len(lease.Statuses) != 4 {
		// The sample key cascades to its parent (stored above): two levels of two limits.
		t.Fatalf("acquire: %d %s", r.StatusCode, r.Body)
	}
	// A stored lease is a transaction: its statuses are estimates, so no RateLimit header.
	if !strings.Contains(r.Headers["ratelimit-policy"], `"parent:tpm"`) || r.Headers["ratelimit"] != "" || !lease.Statuses[3].Estimated {
		t.Errorf("RateLimit-Policy %q, RateLimit %q", r.Headers["ratelimit-policy"], r.Headers["ratelimit"])
	}
	// Request ids are scoped to the caller: a direct invocation (no IAM principal in the event)
	// with the same request id is another acquire and never receives the first lease.
	d := directAnswer(t, acquire.invoke(t, readEvent(t, "acquire", "direct-acquire.json")))
	var again httpapi.AcquireResponse
	if err := json.Unmarshal(d.Body, &again); err != nil || d.Status != 200 || again.LeaseID == lease.LeaseID {
		t.Fatalf("direct acquire with the same request id: %d %s", d.Status, d.Body)
	}
	adjust := strings.ReplaceAll(string(readEvent(t, "acquire", "direct-adjust.json")), "4f6c1f0e9b2d4a7c8e5f3a1b2c3d4e5f", lease.LeaseID)
	if d := directAnswer(t, acquire.invoke(t, []byte(adjust))); d.Status != 200 || !strings.Contains(string(d.Body), `"tpm":1250`) {
		t.Fatalf("direct adjust: %d %s", d.Status, d.Body)
	}
	commit := strings.ReplaceAll(string(readEvent(t, "acquire", "commit.json")), "4f6c1f0e9b2d4a7c8e5f3a1b2c3d4e5f", lease.LeaseID)
	if r := apiAnswer(t, acquire.invoke(t, []byte(commit))); r.StatusCode != 200 {
		t.Fatalf("commit: %d %s", r.StatusCode, r.Body)
	}
	d = directAnswer(t, acquire.invoke(t, readEvent(t, "acquire", "direct-available.json")))
	var avail httpapi.AvailableResponse
	// 1250 tpm taken by the lease and 500 by the direct caller's acquire, and the real clock
	// refills 10000/min meanwhile.
	if err := json.Unmarshal(d.Body, &avail); err != nil || d.Status != 200 || avail.Available["tpm"] < 8250 || avail.Available["tpm"] > 9000 {
		t.Fatalf("direct available: %d %s", d.Status, d.Body)
	}
	if d := directAnswer(t, acquire.invoke(t, []byte(`{"action":"acquire","entity_id":"k"}`))); d.Status != 400 {
		t.Fatalf("bad direct payload: %d %s", d.Status, d.Body)
	}

	for name, fn := range map[string]*emulated{"acquire": acquire, "admin": admin} {
		st, err := os.Stat(filepath.Join(dir, name, "bootstrap"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: bootstrap %d bytes (%.2f MB, %.2f MiB), init %s under the emulator",
			name, st.Size(), float64(st.Size())/1e6, float64(st.Size())/(1<<20), fn.initDuration(t))
	}
}
