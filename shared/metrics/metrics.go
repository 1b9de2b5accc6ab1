// Package metrics writes CloudWatch metrics in Embedded Metric Format (EMF): one JSON line per
// event on the function's standard output, which Lambda sends to CloudWatch Logs and CloudWatch
// turns into metrics. No API call, no extra latency, no extra IAM permission.
//
// A line declares its namespace, dimension sets and metrics under "_aws" and carries each
// dimension's and metric's value as a top-level member:
//
//	{"_aws":{"Timestamp":1767225600000,"CloudWatchMetrics":[{"Namespace":"ZaeLimiter",
//	  "Dimensions":[["FunctionName"],["FunctionName","Route"]],
//	  "Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"}]}]},
//	 "FunctionName":"zl-acquire","Route":"/v1/acquire","Requests":1,"Latency":4.2}
//
// See https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html.
package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// DefaultNamespace is the CloudWatch namespace of the limiter's metrics.
const DefaultNamespace = "ZaeLimiter"

// Metric names of the HTTP functions (acquire, admin): one line per request, dimensions
// FunctionName and FunctionName+Route. Every line has Requests and Latency and every counter
// the route can have, 0 or 1, so a counter's Average is its rate.
const (
	MetricRequests     = "Requests"     // 1 per request
	MetricLatency      = "Latency"      // the handler's time, ms
	MetricClientErrors = "ClientErrors" // 4xx answers except 429 (bad input, unknown lease…)
	MetricRefusals     = "Refusals"     // 429: a rate limit refused the call
	MetricServerErrors = "ServerErrors" // 5xx answers, Unavailable included
	MetricUnavailable  = "Unavailable"  // 503: the limiter's storage failed and the call failed closed
	MetricDegraded     = "Degraded"     // a lease granted without storage (fail open)
	MetricAcquires     = "Acquires"     // 2xx of an acquire route: tokens taken
	MetricLeaseSettles = "LeaseSettles" // 2xx of a commit or rollback route
)

// Metric names of the aggregator: one line per batch, dimension FunctionName.
const (
	MetricRecords        = "Records"          // stream records handed over
	MetricApplied        = "UsageApplied"     // bucket changes added to snapshots
	MetricDuplicates     = "UsageDuplicates"  // bucket changes the snapshots held already
	MetricMalformed      = "MalformedRecords" // bucket records that cannot be read, skipped
	MetricRetried        = "RecordsRetried"   // bucket changes reported for retry
	MetricSnapshotWrites = "SnapshotWrites"   // UpdateItem requests on snapshots
	MetricBatchLatency   = "BatchLatency"     // the batch's time, ms
)

// Limits of one EMF line (the specification's): metrics per directive, dimensions per set.
const (
	MaxMetrics    = 100
	MaxDimensions = 30
)

// Dimension names.
const (
	// DimFunction holds the Lambda function's name (AWS_LAMBDA_FUNCTION_NAME), unique per
	// deployment, so that two stacks in one account never mix their metrics.
	DimFunction = "FunctionName"
	// DimRoute holds an HTTP route's pattern, such as /v1/leases/{lease_id}/commit.
	DimRoute = "Route"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units used here.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
)

// Metric is one value of a line.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// Dimension is one dimension's name and value.
type Dimension struct {
	Name, Value string
}

// Emitter writes EMF lines to a writer, one Write per line. It is safe for concurrent use.
type Emitter struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
}

// New returns an Emitter writing to w (os.Stdout in a Lambda function) in namespace
// (DefaultNamespace when empty).
func New(w io.Writer, namespace string) *Emitter {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Emitter{w: w, namespace: namespace}
}

// Namespace returns the emitter's CloudWatch namespace.
func (e *Emitter) Namespace() string { return e.namespace }

type metricDef struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

type meta struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// Emit writes one line: the metrics, at time at, under dims. Every prefix of dims is a
// dimension set (dims A, B give the sets [A] and [A B]), so the same values are aggregated
// per A and per A and B. A line holds 1 to MaxMetrics metrics and at most MaxDimensions
// dimensions; a metric name must not repeat nor equal a dimension name, and a value must be
// finite: Emit returns an error and writes nothing otherwise. A nil Emitter writes nothing.
func (e *Emitter) Emit(at time.Time, dims []Dimension, ms ...Metric) error {
	if e == nil {
		return nil
	}
	if len(ms) == 0 || len(ms) > MaxMetrics {
		return fmt.Errorf("metrics: a line holds 1 to %d metrics, not %d", MaxMetrics, len(ms))
	}
	if len(dims) > MaxDimensions {
		return fmt.Errorf("metrics: a line holds at most %d dimensions, not %d", MaxDimensions, len(dims))
	}
	d := directive{Namespace: e.namespace, Metrics: make([]metricDef, 0, len(ms))}
	members := make(map[string]any, len(ms)+len(dims)+1)
	names := make([]string, 0, len(dims))
	for _, dim := range dims {
		if dim.Name == "" || dim.Name == "_aws" {
			return fmt.Errorf("metrics: bad dimension name %q", dim.Name)
		}
		if _, dup := members[dim.Name]; dup {
			return fmt.Errorf("metrics: dimension %q repeats", dim.Name)
		}
		members[dim.Name] = dim.Value
		names = append(names, dim.Name)
		d.Dimensions = append(d.Dimensions, append([]string(nil), names...))
	}
	if d.Dimensions == nil {
		d.Dimensions = [][]string{{}}
	}
	for _, m := range ms {
		if m.Name == "" || m.Name == "_aws" {
			return fmt.Errorf("metrics: bad metric name %q", m.Name)
		}
		if _, dup := members[m.Name]; dup {
			return fmt.Errorf("metrics: %q repeats or names a dimension", m.Name)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return fmt.Errorf("metrics: %s = %v is not a finite number", m.Name, m.Value)
		}
		members[m.Name] = m.Value
		d.Metrics = append(d.Metrics, metricDef{Name: m.Name, Unit: m.Unit})
	}
	members["_aws"] = meta{Timestamp: at.UnixMilli(), CloudWatchMetrics: []directive{d}}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(members); err != nil {
		return fmt.Errorf("metrics: encode: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("metrics: write: %w", err)
	}
	return nil
}

// Counter returns a Count metric: 1 when hit, 0 otherwise. Emitting 0s too makes a metric's
// Average over a period the fraction of events that hit it (a rate), and its Sum the count.
func Counter(name string, hit bool) Metric {
	if hit {
		return Metric{Name: name, Unit: UnitCount, Value: 1}
	}
	return Metric{Name: name, Unit: UnitCount, Value: 0}
}

// Count returns a Count metric of n.
func Count(name string, n int64) Metric {
	return Metric{Name: name, Unit: UnitCount, Value: float64(n)}
}

// Duration returns a Milliseconds metric of d, to the microsecond.
func Duration(name string, d time.Duration) Metric {
	return Metric{Name: name, Unit: UnitMilliseconds, Value: float64(d.Microseconds()) / 1000}
}
