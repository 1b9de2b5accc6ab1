package limiterstack

import (
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/jsii-runtime-go"
)

// Alarm thresholds.
const (
	// DurationAlarmFraction: a function's p99 duration at or above this fraction of its timeout
	// means timeouts are near (or happening).
	DurationAlarmFraction = 0.8
	// IteratorAgeAlarm: the aggregator lags this far behind the stream (normal lag is the
	// batching window plus a few seconds).
	IteratorAgeAlarm = 5 * time.Minute
	// alarmPeriod is the period of every alarm's metric.
	alarmPeriod = 5 * time.Minute
)

// AlarmIDs returns the ids of the alarms New creates (keys of LimiterStack.Alarms), so tests and
// dashboards can check none is missing.
func AlarmIDs() []string {
	var ids []string
	for _, fn := range []string{"Acquire", "Admin", "Aggregator"} {
		ids = append(ids, fn+"Errors", fn+"Throttles", fn+"Duration")
	}
	return append(ids, "AggregatorIteratorAge", "AggregatorDLQMessages",
		"TableReadThrottles", "TableWriteThrottles", "Api5xx")
}

// DurationAlarmThresholdMs returns the duration alarm threshold for a function timeout.
func DurationAlarmThresholdMs(timeout time.Duration) float64 {
	return math.Floor(float64(timeout.Milliseconds()) * DurationAlarmFraction)
}

func (s *LimiterStack) addAlarms() {
	period := awscdk.Duration_Seconds(jsii.Number(alarmPeriod.Seconds()))
	topic := s.alarmTopic()
	add := func(id, description string, metric awscloudwatch.Metric, threshold float64) {
		alarm := metric.CreateAlarm(s.Stack, jsii.String(id+"Alarm"), &awscloudwatch.CreateAlarmOptions{
			AlarmDescription:   jsii.String(description),
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// No data means no invocations or no messages: not a failure.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		if topic != nil {
			action := awscloudwatchactions.NewSnsAction(topic)
			alarm.AddAlarmAction(action)
			alarm.AddOkAction(action)
		}
		s.Alarms[id] = alarm
	}
	sum := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}
	max := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Maximum")}
	p99 := &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("p99")}

	timeouts := map[string]time.Duration{
		FunctionAcquire:    s.Props.AcquireTimeout,
		FunctionAdmin:      s.Props.AdminTimeout,
		FunctionAggregator: s.Props.AggregatorTimeout,
	}
	for _, spec := range []struct{ name, id string }{
		{FunctionAcquire, "Acquire"}, {FunctionAdmin, "Admin"}, {FunctionAggregator, "Aggregator"},
	} {
		fn := s.Functions[spec.name]
		add(spec.id+"Errors", fmt.Sprintf("The %s function returned errors (Errors >= 1 in 5 min)", spec.name),
			fn.MetricErrors(sum), 1)
		add(spec.id+"Throttles", fmt.Sprintf("The %s function was throttled (Throttles >= 1 in 5 min)", spec.name),
			fn.MetricThrottles(sum), 1)
		limit := DurationAlarmThresholdMs(timeouts[spec.name])
		add(spec.id+"Duration", fmt.Sprintf("The %s function's p99 duration reached %.0f ms, %.0f%% of its %v timeout",
			spec.name, limit, DurationAlarmFraction*100, timeouts[spec.name]),
			fn.MetricDuration(p99), limit)
	}
	add("AggregatorIteratorAge", fmt.Sprintf("The aggregator lags the table stream by %v or more (IteratorAge Maximum)", IteratorAgeAlarm),
		s.Functions[FunctionAggregator].Metric(jsii.String("IteratorAge"), max), float64(IteratorAgeAlarm.Milliseconds()))
	add("AggregatorDLQMessages", "Stream batches the aggregator gave up on are waiting in its dead-letter queue",
		s.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(max), 1)
	add("TableReadThrottles", "DynamoDB throttled reads on the limiter table", s.Table.Metric(jsii.String("ReadThrottleEvents"), sum), 1)
	add("TableWriteThrottles", "DynamoDB throttled writes on the limiter table", s.Table.Metric(jsii.String("WriteThrottleEvents"), sum), 1)
	add("Api5xx", "The HTTP API returned 5xx responses (function errors, timeouts or integration failures)",
		s.Stage.MetricServerError(sum), 1)
}
