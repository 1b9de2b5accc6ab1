package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

// Every request the router serves, answered or not, writes one EMF line with its route and
// outcome counters.
func TestMetricsObserver(t *testing.T) {
	var out bytes.Buffer
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	rt := echoRouter(slog.New(slog.DiscardHandler)).Observe(MetricsObserver(metrics.New(&out, ""), "zl-test",
		RouteMetrics{"/v1/things/{id}/poke": "Pokes"}, func() time.Time { return at }))
	ctx := context.Background()
	for _, ev := range [][3]string{
		{"POST", "/v1/things/a/poke", ""}, {"GET", "/v1/things/x", ""}, {"POST", "/v1/panic", ""},
		{"GET", "/v1/nowhere", ""}, {"DELETE", "/v1/things/x", ""},
	} {
		rt.HandleEvent(ctx, v2Event(ev[0], ev[1], ev[2]))
	}
	rt.HandleDirect(ctx, []byte(`{"action":"poke","id":"b"}`))

	type want struct {
		route  string
		counts map[string]float64
	}
	wants := []want{
		{"/v1/things/{id}/poke", map[string]float64{"Pokes": 1, "ServerErrors": 0, "ClientErrors": 0}},
		{"/v1/things/{id}", map[string]float64{"ServerErrors": 0, "ClientErrors": 0}},
		{"/v1/panic", map[string]float64{"ServerErrors": 1, "Unavailable": 0, "ClientErrors": 0}},
		{"unmatched", map[string]float64{"ClientErrors": 1, "ServerErrors": 0}},
		{"unmatched", map[string]float64{"ClientErrors": 1}},
		{"/v1/things/{id}/poke", map[string]float64{"Pokes": 1}},
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
		w := wants[i]
		if m["FunctionName"] != "zl-test" || m["Route"] != w.route || m["Requests"] != 1.0 || m["Refusals"] != 0.0 || m["Degraded"] != 0.0 {
			t.Errorf("line %d: %s", i, l)
		}
		if _, ok := m["Latency"].(float64); !ok {
			t.Errorf("line %d has no latency: %s", i, l)
		}
		for k, v := range w.counts {
			if m[k] != v {
				t.Errorf("line %d: %s = %v, want %v (%s)", i, k, m[k], v, l)
			}
		}
		if _, ok := m["Pokes"]; ok != (w.route == "/v1/things/{id}/poke") {
			t.Errorf("line %d: the route counter is on the wrong routes: %s", i, l)
		}
	}
}

// BenchmarkMetricsObserver is the cost a request pays for its metrics line (to io.Discard).
func BenchmarkMetricsObserver(b *testing.B) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	obs := MetricsObserver(metrics.New(io.Discard, ""), "zl-acquire", RouteMetrics{"/v1/acquire": "Acquires"}, func() time.Time { return at })
	req := &Request{Route: "/v1/acquire"}
	resp := &Response{Status: 200}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obs(ctx, req, resp, 4200*time.Microsecond)
	}
}
