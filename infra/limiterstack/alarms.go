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

// Alarm thresholds. Failures alarm on rates over enough traffic, for two of three 5-minute
// periods: one failed request among thousands pages nobody, a steady 1% does.
const (
	// DurationAlarmFraction: a function's p99 duration at or above this fraction of its timeout
	// means timeouts are near (or happening).
	DurationAlarmFraction = 0.8
	// IteratorAgeAlarm: the aggregator lags this far behind the stream (normal lag is the
	// batching window plus a few seconds).
	IteratorAgeAlarm = 5 * time.Minute
	// ErrorRateAlarmPercent is the share of failed requests (5xx, function errors, throttles,
	// degraded grants) that raises an alarm.
	ErrorRateAlarmPercent = 1
	// ClientErrorRateAlarmPercent is the share of 4xx answers (429 refusals excluded; 403 from
	// the API's access logs) that raises an alarm: a caller release that sends bad requests.
	ClientErrorRateAlarmPercent = 10
	// MinRequests is the traffic in a period below which rates do not alarm.
	MinRequests = 20
	// ThrottleEventsAlarm is the number of DynamoDB throttle events (reads + writes) of the
	// table or an index in a period that raises an alarm.
	ThrottleEventsAlarm = 10
	// alarmPeriod is the period of every alarm's metric.
	alarmPeriod = 5 * time.Minute
)

// AlarmIDs returns the ids of the alarms New creates (keys of LimiterStack.Alarms), so tests and
// the dashboard can check none is missing.
func AlarmIDs() []string {
	var ids []string
	for _, fn := range []string{"Acquire", "Admin", "Aggregator"} {
		ids = append(ids, fn+"ErrorRate", fn+"ThrottleRate", fn+"Duration")
	}
	return append(ids,
		"AcquireServerErrorRate", "AcquireClientErrorRate", "AcquireDegradedRate",
		"AdminServerErrorRate", "AdminClientErrorRate",
		"Api5xxRate", "ApiForbiddenRate", "ApiLatencyP99",
		"TableThrottles", "GSI1Throttles", "GSI2Throttles",
		"AggregatorIteratorAge", "AggregatorStalled", "AggregatorMalformedRecords", "AggregatorDLQMessages")
}

// DurationAlarmThresholdMs returns the duration alarm threshold for a function timeout.
func DurationAlarmThresholdMs(timeout time.Duration) float64 {
	return math.Floor(float64(timeout.Milliseconds()) * DurationAlarmFraction)
}

// rateExpression is the percentage of part in total, 0 below min total (too little traffic to
// tell). Missing part data counts as 0.
func rateExpression(min int) string {
	return fmt.Sprintf("IF(total >= %d, 100 * FILL(part, 0) / total, 0)", min)
}

// alarmSpec is one alarm: what it measures, when it fires, and what it means.
type alarmSpec struct {
	id, description string
	metric          awscloudwatch.IMetric
	threshold       float64
	// datapoints of the last evaluate periods must breach (default 1 of 1).
	datapoints, evaluate int
}

func (s *LimiterStack) addAlarms() {
	period := awscdk.Duration_Seconds(jsii.Number(alarmPeriod.Seconds()))
	stat := func(statistic string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String(statistic)}
	}
	rate := func(label string, min int, part, total awscloudwatch.IMetric) awscloudwatch.IMetric {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(rateExpression(min)),
			UsingMetrics: &map[string]awscloudwatch.IMetric{"part": part, "total": total},
			Label:        jsii.String(label),
			Period:       period,
		})
	}
	var specs []alarmSpec
	timeouts := map[string]time.Duration{
		FunctionAcquire: s.Props.AcquireTimeout, FunctionAdmin: s.Props.AdminTimeout, FunctionAggregator: s.Props.AggregatorTimeout,
	}
	for _, f := range []struct {
		name, id string
		min      int
	}{
		{FunctionAcquire, "Acquire", MinRequests}, {FunctionAdmin, "Admin", MinRequests},
		// The aggregator runs a few times a minute per shard; every crash repeats a batch.
		{FunctionAggregator, "Aggregator", 1},
	} {
		fn := s.Functions[f.name]
		limit := DurationAlarmThresholdMs(timeouts[f.name])
		specs = append(specs,
			alarmSpec{f.id + "ErrorRate",
				fmt.Sprintf("The %s function fails (crash, timeout, out of memory) on %d%% or more of its invocations", f.name, ErrorRateAlarmPercent),
				rate("% errors", f.min, fn.MetricErrors(stat("Sum")), fn.MetricInvocations(stat("Sum"))), ErrorRateAlarmPercent, 2, 3},
			alarmSpec{f.id + "ThrottleRate",
				fmt.Sprintf("Lambda throttles %d%% or more of the %s function's invocations (concurrency limit)", ErrorRateAlarmPercent, f.name),
				rate("% throttled", MinRequests, fn.MetricThrottles(stat("Sum")), awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
					Expression: jsii.String("FILL(inv, 0) + FILL(thr, 0)"), Period: period,
					UsingMetrics: &map[string]awscloudwatch.IMetric{"inv": fn.MetricInvocations(stat("Sum")), "thr": fn.MetricThrottles(stat("Sum"))},
				})), ErrorRateAlarmPercent, 2, 3},
			alarmSpec{f.id + "Duration",
				fmt.Sprintf("The %s function's p99 duration reached %.0f ms, %.0f%% of its %v timeout", f.name, limit, DurationAlarmFraction*100, timeouts[f.name]),
				fn.MetricDuration(stat("p99")), limit, 2, 3},
		)
	}
	for _, f := range []struct{ name, id string }{{FunctionAcquire, "Acquire"}, {FunctionAdmin, "Admin"}} {
		requests := s.fnMetric(f.name, MetricRequests, "Sum")
		specs = append(specs,
			alarmSpec{f.id + "ServerErrorRate",
				fmt.Sprintf("The %s function answers 5xx (storage unavailable, internal errors) to %d%% or more of requests", f.name, ErrorRateAlarmPercent),
				rate("% 5xx", MinRequests, s.fnMetric(f.name, MetricServerErrors, "Sum"), requests), ErrorRateAlarmPercent, 2, 3},
			alarmSpec{f.id + "ClientErrorRate",
				fmt.Sprintf("The %s function answers 4xx other than 429 (bad input, unknown leases) to %d%% or more of requests", f.name, ClientErrorRateAlarmPercent),
				rate("% 4xx", MinRequests, s.fnMetric(f.name, MetricClientErrors, "Sum"), requests), ClientErrorRateAlarmPercent, 2, 3},
		)
	}
	specs = append(specs,
		alarmSpec{"AcquireDegradedRate",
			fmt.Sprintf("%d%% or more of acquires were granted without the table (fail open): limits are not enforced", ErrorRateAlarmPercent),
			rate("% degraded", MinRequests, s.fnMetric(FunctionAcquire, MetricDegraded, "Sum"), s.fnMetric(FunctionAcquire, MetricRequests, "Sum")),
			ErrorRateAlarmPercent, 2, 3},
		alarmSpec{"Api5xxRate",
			fmt.Sprintf("The HTTP API answers 5xx to %d%% or more of requests (function errors, throttles, timeouts, integration failures)", ErrorRateAlarmPercent),
			rate("% 5xx", MinRequests, s.Stage.MetricServerError(stat("Sum")), s.Stage.MetricCount(stat("Sum"))), ErrorRateAlarmPercent, 2, 3},
		alarmSpec{"ApiForbiddenRate",
			fmt.Sprintf("The HTTP API refuses %d%% or more of requests with 403 (bad signatures, callers without execute-api:Invoke)", ClientErrorRateAlarmPercent),
			rate("% 403", MinRequests, s.ForbiddenMetric, s.Stage.MetricCount(stat("Sum"))), ClientErrorRateAlarmPercent, 2, 3},
		alarmSpec{"ApiLatencyP99",
			fmt.Sprintf("The HTTP API's p99 latency reached %d ms", s.Props.APILatencyAlarm.Milliseconds()),
			s.Stage.MetricLatency(stat("p99")), float64(s.Props.APILatencyAlarm.Milliseconds()), 2, 3},
	)
	throttles := func(label string, read, write awscloudwatch.IMetric) awscloudwatch.IMetric {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("FILL(r, 0) + FILL(w, 0)"), Label: jsii.String(label), Period: period,
			UsingMetrics: &map[string]awscloudwatch.IMetric{"r": read, "w": write},
		})
	}
	specs = append(specs,
		alarmSpec{"TableThrottles", fmt.Sprintf("DynamoDB throttled %d or more reads and writes of the table in 5 minutes", ThrottleEventsAlarm),
			throttles("table throttle events", s.Table.Metric(jsii.String("ReadThrottleEvents"), stat("Sum")), s.Table.Metric(jsii.String("WriteThrottleEvents"), stat("Sum"))),
			ThrottleEventsAlarm, 2, 3},
	)
	for _, index := range []string{IndexGSI1, IndexGSI2} {
		specs = append(specs, alarmSpec{index + "Throttles",
			fmt.Sprintf("DynamoDB throttled %d or more reads and writes of index %s in 5 minutes (index write throttling also throttles the table's writes)", ThrottleEventsAlarm, index),
			throttles(index+" throttle events", s.indexMetric(index, "ReadThrottleEvents"), s.indexMetric(index, "WriteThrottleEvents")),
			ThrottleEventsAlarm, 2, 3})
	}
	agg := s.Functions[FunctionAggregator]
	specs = append(specs,
		alarmSpec{"AggregatorIteratorAge", fmt.Sprintf("The aggregator lags the table stream by %v or more (IteratorAge Maximum)", IteratorAgeAlarm),
			agg.Metric(jsii.String("IteratorAge"), stat("Maximum")), float64(IteratorAgeAlarm.Milliseconds()), 1, 1},
		alarmSpec{"AggregatorStalled", "Acquires write buckets but the aggregator has not been invoked for 15 minutes: the stream mapping is disabled, deleted or stuck",
			awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String("IF(FILL(acquires, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"), Label: jsii.String("stalled"), Period: period,
				UsingMetrics: &map[string]awscloudwatch.IMetric{
					"acquires": s.fnMetric(FunctionAcquire, MetricAcquires, "Sum"), "invocations": agg.MetricInvocations(stat("Sum")),
				},
			}), 1, 3, 3},
		alarmSpec{"AggregatorMalformedRecords", "The aggregator skipped bucket records it cannot read: their usage is not counted",
			s.fnMetric(FunctionAggregator, MetricMalformed, "Sum"), 1, 1, 1},
		alarmSpec{"AggregatorDLQMessages", "Stream batches the aggregator gave up on (after retrying until their maximum age) are in its dead-letter queue: their usage is not counted",
			s.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(stat("Maximum")), 1, 1, 1},
	)

	topic := s.alarmTopic()
	for _, spec := range specs {
		alarm := awscloudwatch.NewAlarm(s.Stack, jsii.String(spec.id+"Alarm"), &awscloudwatch.AlarmProps{
			Metric:             spec.metric,
			AlarmDescription:   jsii.String(spec.description + " (docs/deploy.md#alarms)"),
			Threshold:          jsii.Number(spec.threshold),
			EvaluationPeriods:  jsii.Number(float64(spec.evaluate)),
			DatapointsToAlarm:  jsii.Number(float64(spec.datapoints)),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// No data means no invocations or no messages: not a failure.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		if topic != nil {
			action := awscloudwatchactions.NewSnsAction(topic)
			alarm.AddAlarmAction(action)
			alarm.AddOkAction(action)
		}
		s.Alarms[spec.id] = alarm
	}
}
