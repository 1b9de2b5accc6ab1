package limiterstack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// expectedAlarm is an alarm the stack must have, identified by what it measures.
type expectedAlarm struct {
	id                   string // key in LimiterStack.Alarms
	measures             []string
	threshold            float64
	datapoints, evaluate float64
}

// leaf describes one metric of an alarm: namespace, name, statistic and dimensions.
func leaf(namespace, name, stat string, dims ...any) string {
	d, _ := json.Marshal(dims)
	return fmt.Sprintf("%s %s %s %s", namespace, name, stat, d)
}

// measures returns what an alarm's properties measure: its metric, or every metric and
// expression of its metric math, sorted.
func measures(p map[string]any) []string {
	dims := func(v any) []any {
		var out []any
		for _, d := range list(v) {
			m := d.(map[string]any)
			out = append(out, m["Name"], m["Value"])
		}
		return out
	}
	if ms, ok := p["Metrics"]; ok {
		var out []string
		for _, m := range list(ms) {
			m := m.(map[string]any)
			if e, ok := m["Expression"].(string); ok {
				out = append(out, "expr "+e)
				continue
			}
			st := m["MetricStat"].(map[string]any)
			met := st["Metric"].(map[string]any)
			out = append(out, leaf(met["Namespace"].(string), met["MetricName"].(string), st["Stat"].(string), dims(met["Dimensions"])...))
		}
		sort.Strings(out)
		return out
	}
	stat := p["Statistic"]
	if stat == nil {
		stat = p["ExtendedStatistic"]
	}
	return []string{leaf(p["Namespace"].(string), p["MetricName"].(string), fmt.Sprint(stat), dims(p["Dimensions"])...)}
}

// expectedAlarms lists every alarm the stack must create, derived from the stack's resources.
func expectedAlarms(f *fixture) []expectedAlarm {
	fnRef := func(fn string) any { return ref(f.id(f.stack.Functions[fn])) }
	lambda := func(fn, name, stat string) string { return leaf("AWS/Lambda", name, stat, "FunctionName", fnRef(fn)) }
	ns := f.stack.Props.MetricsNamespace
	emf := func(fn, name string) string { return leaf(ns, name, "Sum", "FunctionName", fnRef(fn)) }
	rate := func(min int, part, total string) []string {
		return []string{fmt.Sprintf("expr IF(total >= %d, 100 * FILL(part, 0) / total, 0)", min), part, total}
	}
	sorted := func(s []string) []string { sort.Strings(s); return s }
	api := []any{"ApiId", ref(f.id(f.stack.API)), "Stage", f.stack.Props.StageName}
	table := ref(f.id(f.stack.Table))
	var out []expectedAlarm
	for _, fn := range []struct {
		name, id   string
		min        int
		durationMs float64
	}{{FunctionAcquire, "Acquire", 20, 8000}, {FunctionAdmin, "Admin", 20, 12000}, {FunctionAggregator, "Aggregator", 1, 48000}} {
		out = append(out,
			expectedAlarm{fn.id + "ErrorRate", sorted(rate(fn.min, lambda(fn.name, "Errors", "Sum"), lambda(fn.name, "Invocations", "Sum"))), 1, 2, 3},
			expectedAlarm{fn.id + "ThrottleRate", sorted(append(rate(20, lambda(fn.name, "Throttles", "Sum"), "expr FILL(inv, 0) + FILL(thr, 0)"),
				lambda(fn.name, "Invocations", "Sum"), lambda(fn.name, "Throttles", "Sum"))), 1, 2, 3},
			expectedAlarm{fn.id + "Duration", []string{lambda(fn.name, "Duration", "p99")}, fn.durationMs, 2, 3},
		)
	}
	for _, fn := range []struct{ name, id string }{{FunctionAcquire, "Acquire"}, {FunctionAdmin, "Admin"}} {
		out = append(out,
			expectedAlarm{fn.id + "ServerErrorRate", sorted(rate(20, emf(fn.name, "ServerErrors"), emf(fn.name, "Requests"))), 1, 2, 3},
			expectedAlarm{fn.id + "ClientErrorRate", sorted(rate(20, emf(fn.name, "ClientErrors"), emf(fn.name, "Requests"))), 10, 2, 3},
		)
	}
	throttles := func(dims ...any) []string {
		return sorted([]string{"expr FILL(r, 0) + FILL(w, 0)", leaf("AWS/DynamoDB", "ReadThrottleEvents", "Sum", dims...),
			leaf("AWS/DynamoDB", "WriteThrottleEvents", "Sum", dims...)})
	}
	return append(out,
		expectedAlarm{"AcquireDegradedRate", sorted(rate(20, emf(FunctionAcquire, "Degraded"), emf(FunctionAcquire, "Requests"))), 1, 2, 3},
		expectedAlarm{"Api5xxRate", sorted(rate(20, leaf("AWS/ApiGateway", "5xx", "Sum", api...), leaf("AWS/ApiGateway", "Count", "Sum", api...))), 1, 2, 3},
		expectedAlarm{"ApiForbiddenRate", sorted(rate(20, leaf(ns, "ApiForbidden", "Sum", "ApiId", ref(f.id(f.stack.API))),
			leaf("AWS/ApiGateway", "Count", "Sum", api...))), 10, 2, 3},
		expectedAlarm{"ApiLatencyP99", []string{leaf("AWS/ApiGateway", "Latency", "p99", api...)}, float64(f.stack.Props.APILatencyAlarm.Milliseconds()), 2, 3},
		expectedAlarm{"TableThrottles", throttles("TableName", table), 10, 2, 3},
		expectedAlarm{"GSI1Throttles", throttles("GlobalSecondaryIndexName", "GSI1", "TableName", table), 10, 2, 3},
		expectedAlarm{"GSI2Throttles", throttles("GlobalSecondaryIndexName", "GSI2", "TableName", table), 10, 2, 3},
		expectedAlarm{"AggregatorIteratorAge", []string{lambda(FunctionAggregator, "IteratorAge", "Maximum")}, 300000, 1, 1},
		expectedAlarm{"AggregatorStalled", sorted([]string{"expr IF(FILL(acquires, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)",
			emf(FunctionAcquire, "Acquires"), lambda(FunctionAggregator, "Invocations", "Sum")}), 1, 3, 3},
		expectedAlarm{"AggregatorMalformedRecords", []string{emf(FunctionAggregator, "MalformedRecords")}, 1, 1, 1},
		expectedAlarm{"AggregatorDLQMessages", []string{leaf("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum",
			"QueueName", getAtt(f.id(f.stack.DeadLetterQueue), "QueueName"))}, 1, 1, 1},
	)
}

// matches reports whether an alarm's properties implement spec.
func (spec expectedAlarm) matches(p map[string]any) bool {
	period := p["Period"]
	for _, m := range list(p["Metrics"]) {
		if st, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok && st["Period"] != 300.0 {
			return false
		}
		period = 300.0
	}
	return jsonEqual(measures(p), spec.measures) && period == 300.0 &&
		p["Threshold"] == spec.threshold && p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" &&
		p["EvaluationPeriods"] == spec.evaluate && p["DatapointsToAlarm"] == spec.datapoints
}

// missingAlarms returns the ids of the specs no alarm of doc implements.
func missingAlarms(doc map[string]any, specs []expectedAlarm) []string {
	alarms := resourcesOf(doc, "AWS::CloudWatch::Alarm")
	var missing []string
	for _, spec := range specs {
		found := false
		for _, a := range alarms {
			if spec.matches(a["Properties"].(map[string]any)) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, spec.id)
		}
	}
	return missing
}

func TestAlarms(t *testing.T) {
	f := defaultStack(t)
	specs := expectedAlarms(f)
	for _, spec := range specs {
		a, ok := f.stack.Alarms[spec.id]
		if !ok {
			t.Errorf("alarm %s missing from LimiterStack.Alarms", spec.id)
			continue
		}
		if p := f.props(t, f.id(a)); !spec.matches(p) {
			t.Errorf("alarm %s measures\n  %s\nwant\n  %s\n(threshold %v, %v of %v)", spec.id,
				strings.Join(measures(p), "\n  "), strings.Join(spec.measures, "\n  "), p["Threshold"], p["DatapointsToAlarm"], p["EvaluationPeriods"])
		}
	}
	check(t, "alarm count", func() {
		f.tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(float64(len(specs))))
	})
	var ids, specIDs []string
	for id := range f.stack.Alarms {
		ids = append(ids, id)
	}
	for _, s := range specs {
		specIDs = append(specIDs, s.id)
	}
	sort.Strings(ids)
	equal(t, "LimiterStack.Alarms keys", ids, sorted(specIDs))
	equal(t, "AlarmIDs()", sorted(AlarmIDs()), sorted(specIDs))
	for id, a := range f.resources("AWS::CloudWatch::Alarm") {
		p := a["Properties"].(map[string]any)
		equal(t, id+" TreatMissingData", p["TreatMissingData"], "notBreaching")
		if _, ok := p["AlarmActions"]; ok {
			t.Errorf("%s has alarm actions without a topic: %v", id, p["AlarmActions"])
		}
		if d, _ := p["AlarmDescription"].(string); !strings.Contains(d, "docs/deploy.md#alarms") {
			t.Errorf("%s: description %q does not point to the runbook", id, d)
		}
	}
}

// TestMissingAlarmIsDetected proves TestAlarms fails when any expected alarm is absent.
func TestMissingAlarmIsDetected(t *testing.T) {
	f := defaultStack(t)
	for _, spec := range expectedAlarms(f) {
		// A deep copy of the template without the alarm implementing spec.
		raw, _ := json.Marshal(f.doc)
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		removed := 0
		for id, a := range resourcesOf(doc, "AWS::CloudWatch::Alarm") {
			if spec.matches(a["Properties"].(map[string]any)) {
				delete(doc["Resources"].(map[string]any), id)
				removed++
			}
		}
		if removed != 1 {
			t.Errorf("%s: %d alarms implement it, want exactly 1", spec.id, removed)
		}
		equal(t, "missing after removing "+spec.id, missingAlarms(doc, expectedAlarms(f)), []string{spec.id})
	}
	// A changed threshold is also a missing alarm.
	bad := expectedAlarms(f)[0]
	bad.threshold++
	equal(t, "wrong threshold", missingAlarms(f.doc, []expectedAlarm{bad}), []string{bad.id})
}

func TestAlarmTopicAndSwitch(t *testing.T) {
	f := customStack(t)
	if missing := missingAlarms(f.doc, expectedAlarms(f)); len(missing) > 0 {
		t.Errorf("custom stack misses alarms: %v", missing)
	}
	alarms := f.resources("AWS::CloudWatch::Alarm")
	equal(t, "alarm count", len(alarms), len(AlarmIDs()))
	for id, a := range alarms {
		p := a["Properties"].(map[string]any)
		equal(t, id+" AlarmActions", p["AlarmActions"], anys(testAlarmTopicArn))
		equal(t, id+" OKActions", p["OKActions"], anys(testAlarmTopicArn))
	}
	off := noAlarmsStack(t)
	equal(t, "alarms when off", len(off.resources("AWS::CloudWatch::Alarm")), 0)
	equal(t, "LimiterStack.Alarms when off", len(off.stack.Alarms), 0)
}

func TestDurationAlarmThreshold(t *testing.T) {
	for _, c := range []struct {
		seconds int
		want    float64
	}{{10, 8000}, {15, 12000}, {60, 48000}, {3, 2400}} {
		got := DurationAlarmThresholdMs(timeSeconds(c.seconds))
		equal(t, fmt.Sprintf("threshold for %ds", c.seconds), got, c.want)
	}
}
