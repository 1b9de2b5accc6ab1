package limiterstack

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// alarmSpec is an alarm the stack must have, identified by what it measures.
type alarmSpec struct {
	id         string // key in LimiterStack.Alarms
	namespace  string
	metric     string
	dimensions []any  // the alarm's Dimensions, exactly
	statistic  string // Statistic, or ExtendedStatistic for percentiles
	threshold  float64
}

// expectedAlarms lists every alarm the stack must create, derived from the stack's resources.
func expectedAlarms(f *fixture) []alarmSpec {
	dim := func(name string, value any) map[string]any { return map[string]any{"Name": name, "Value": value} }
	fnDim := func(fn string) []any { return []any{dim("FunctionName", ref(f.id(f.stack.Functions[fn])))} }
	var out []alarmSpec
	// Duration thresholds: 80% of the 10 s, 15 s and 60 s timeouts, in milliseconds.
	for _, fn := range []struct {
		name, id   string
		durationMs float64
	}{{FunctionAcquire, "Acquire", 8000}, {FunctionAdmin, "Admin", 12000}, {FunctionAggregator, "Aggregator", 48000}} {
		out = append(out,
			alarmSpec{fn.id + "Errors", "AWS/Lambda", "Errors", fnDim(fn.name), "Sum", 1},
			alarmSpec{fn.id + "Throttles", "AWS/Lambda", "Throttles", fnDim(fn.name), "Sum", 1},
			alarmSpec{fn.id + "Duration", "AWS/Lambda", "Duration", fnDim(fn.name), "p99", fn.durationMs},
		)
	}
	tableID := f.id(f.stack.Table)
	return append(out,
		alarmSpec{"AggregatorIteratorAge", "AWS/Lambda", "IteratorAge", fnDim(FunctionAggregator), "Maximum", 300000},
		alarmSpec{"AggregatorDLQMessages", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
			[]any{dim("QueueName", getAtt(f.id(f.stack.DeadLetterQueue), "QueueName"))}, "Maximum", 1},
		alarmSpec{"TableReadThrottles", "AWS/DynamoDB", "ReadThrottleEvents", []any{dim("TableName", ref(tableID))}, "Sum", 1},
		alarmSpec{"TableWriteThrottles", "AWS/DynamoDB", "WriteThrottleEvents", []any{dim("TableName", ref(tableID))}, "Sum", 1},
		alarmSpec{"Api5xx", "AWS/ApiGateway", "5xx", []any{dim("ApiId", ref(f.id(f.stack.API))), dim("Stage", "$default")}, "Sum", 1},
	)
}

// matches reports whether an alarm's properties implement spec.
func (spec alarmSpec) matches(p map[string]any) bool {
	stat := p["Statistic"]
	if stat == nil {
		stat = p["ExtendedStatistic"]
	}
	return p["Namespace"] == spec.namespace && p["MetricName"] == spec.metric &&
		jsonEqual(p["Dimensions"], spec.dimensions) && stat == spec.statistic &&
		p["Threshold"] == spec.threshold &&
		p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" &&
		p["EvaluationPeriods"] == 1.0 && p["Period"] == 300.0
}

// missingAlarms returns the ids of the specs no alarm of doc implements.
func missingAlarms(doc map[string]any, specs []alarmSpec) []string {
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
	if missing := missingAlarms(f.doc, specs); len(missing) > 0 {
		t.Errorf("missing alarms: %v", missing)
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
		if d, _ := p["AlarmDescription"].(string); d == "" {
			t.Errorf("%s has no description", id)
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
	equal(t, "wrong threshold", missingAlarms(f.doc, []alarmSpec{bad}), []string{bad.id})
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
