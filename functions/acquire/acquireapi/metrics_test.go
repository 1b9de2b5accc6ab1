package acquireapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

// The function's metrics: one EMF line per request, with what happened to it.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	var out bytes.Buffer
	router := acquireapi.New(e.lim, slog.New(slog.DiscardHandler)).
		Observe(httpapi.MetricsObserver(metrics.New(&out, ""), "zl-acquire", acquireapi.RouteMetrics(), e.clock.Now))
	h := lambda.NewHandler(router)
	if r := call(t, h, event(t, "acquire.json", nil)); r.StatusCode != 200 {
		t.Fatalf("acquire: %d %s", r.StatusCode, r.Body)
	}
	e.faults.Fail("", -1, nil)
	if r := call(t, h, event(t, "acquire.json", nil)); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fail closed: %d %s", r.StatusCode, r.Body)
	}
	if r := call(t, h, event(t, "acquire.json", withBody(strings.Replace(event(t, "acquire.json", nil).Body, "fail_closed", "fail_open", 1)))); r.StatusCode != 200 {
		t.Fatalf("fail open: %d %s", r.StatusCode, r.Body)
	}
	if r := call(t, h, event(t, "commit.json", nil)); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("commit: %d %s", r.StatusCode, r.Body)
	}
	wants := []map[string]any{
		{"Route": acquireapi.PathAcquire, "Acquires": 1.0, "Degraded": 0.0, "Unavailable": 0.0, "ServerErrors": 0.0},
		{"Route": acquireapi.PathAcquire, "Acquires": 0.0, "Degraded": 0.0, "Unavailable": 1.0, "ServerErrors": 1.0},
		{"Route": acquireapi.PathAcquire, "Acquires": 1.0, "Degraded": 1.0, "Unavailable": 0.0, "ServerErrors": 0.0},
		{"Route": acquireapi.PathCommit, "LeaseSettles": 0.0, "Degraded": 0.0, "Unavailable": 1.0, "ServerErrors": 1.0},
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(wants) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(wants), out.String())
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range wants[i] {
			if m[k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%s", i, k, m[k], v, l)
			}
		}
		aws := m["_aws"].(map[string]any)
		if aws["Timestamp"] != float64(e.clock.Now().UnixMilli()) || m["FunctionName"] != "zl-acquire" {
			t.Errorf("line %d: timestamp or function: %s", i, l)
		}
	}
}
