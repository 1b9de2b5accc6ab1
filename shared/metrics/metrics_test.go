package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/metrics"
)

var at = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestEmitLine(t *testing.T) {
	var out bytes.Buffer
	em := metrics.New(&out, "")
	err := em.Emit(at, []metrics.Dimension{{Name: metrics.DimFunction, Value: "zl-acquire"}, {Name: metrics.DimRoute, Value: "/v1/acquire"}},
		metrics.Count(metrics.MetricRequests, 1), metrics.Counter(metrics.MetricRefusals, false),
		metrics.Duration(metrics.MetricLatency, 4200*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"FunctionName":"zl-acquire","Latency":4.2,"Refusals":0,"Requests":1,"Route":"/v1/acquire",` +
		`"_aws":{"Timestamp":1795694400000,"CloudWatchMetrics":[{"Namespace":"ZaeLimiter",` +
		`"Dimensions":[["FunctionName"],["FunctionName","Route"]],` +
		`"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"Refusals","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"}]}]}}` + "\n"
	if out.String() != want {
		t.Fatalf("line\n%s\nwant\n%s", out.String(), want)
	}
}

func TestEmitWithoutDimensionsAndOtherNamespace(t *testing.T) {
	var out bytes.Buffer
	em := metrics.New(&out, "Other")
	if em.Namespace() != "Other" {
		t.Fatalf("namespace %q", em.Namespace())
	}
	if err := em.Emit(at, nil, metrics.Count("X", 7)); err != nil {
		t.Fatal(err)
	}
	var line struct {
		X   float64
		Aws struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	d := line.Aws.CloudWatchMetrics[0]
	if line.X != 7 || d.Namespace != "Other" || len(d.Dimensions) != 1 || len(d.Dimensions[0]) != 0 {
		t.Fatalf("line %s", out.String())
	}
}

func TestEmitRefusesBadLines(t *testing.T) {
	var out bytes.Buffer
	em := metrics.New(&out, "")
	fn := []metrics.Dimension{{Name: metrics.DimFunction, Value: "f"}}
	for name, ms := range map[string][]metrics.Metric{
		"no metric":                     nil,
		"repeated metric":               {metrics.Count("A", 1), metrics.Count("A", 2)},
		"metric named like a dimension": {metrics.Count(metrics.DimFunction, 1)},
		"NaN":                           {{Name: "A", Unit: metrics.UnitCount, Value: math.NaN()}},
		"infinity":                      {{Name: "A", Unit: metrics.UnitCount, Value: math.Inf(1)}},
		"empty name":                    {metrics.Count("", 1)},
		"reserved name":                 {metrics.Count("_aws", 1)},
	} {
		if err := em.Emit(at, fn, ms...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := em.Emit(at, []metrics.Dimension{{Name: "D", Value: "1"}, {Name: "D", Value: "2"}}, metrics.Count("A", 1)); err == nil {
		t.Error("repeated dimension: no error")
	}
	many := make([]metrics.Metric, metrics.MaxMetrics+1)
	for i := range many {
		many[i] = metrics.Count(fmt.Sprintf("M%d", i), 1)
	}
	if err := em.Emit(at, fn, many...); err == nil {
		t.Error("101 metrics: no error")
	}
	if err := em.Emit(at, fn, many[:metrics.MaxMetrics]...); err != nil {
		t.Errorf("100 metrics: %v", err)
	}
	out.Reset()
	var dims []metrics.Dimension
	for i := 0; i <= metrics.MaxDimensions; i++ {
		dims = append(dims, metrics.Dimension{Name: fmt.Sprintf("D%d", i), Value: "v"})
	}
	if err := em.Emit(at, dims, metrics.Count("A", 1)); err == nil {
		t.Error("31 dimensions: no error")
	}
	if out.Len() != 0 {
		t.Fatalf("refused lines were written: %s", out.String())
	}
	var none *metrics.Emitter
	if err := none.Emit(at, nil, metrics.Count("A", 1)); err != nil {
		t.Fatalf("nil emitter: %v", err)
	}
}

func TestCounter(t *testing.T) {
	if metrics.Counter("A", true).Value != 1 || metrics.Counter("A", false).Value != 0 {
		t.Fatal("Counter is not 1 when hit and 0 otherwise")
	}
}

// Lines written concurrently never interleave.
func TestEmitConcurrent(t *testing.T) {
	var out bytes.Buffer
	em := metrics.New(&out, "")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if err := em.Emit(at, []metrics.Dimension{{Name: "D", Value: strings.Repeat("x", 200)}}, metrics.Count("A", 1)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("interleaved line: %s", l)
		}
	}
}
