package limiterstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// dashboardRows are the titles of the dashboard's graphs, row by row (docs/deploy.md explains
// how to read each).
var dashboardRows = [][]string{
	{"API requests and errors", "API latency (ms)", "API 403 (IAM refused)"},
	{"Acquire outcomes", "Acquire function latency (ms)", "Admin outcomes"},
	{"Lambda invocations and errors", "Lambda throttles", "Lambda p99 duration (ms)"},
	{"Aggregator: records and usage", "Aggregator: stream lag (ms)", "Aggregator: lost usage"},
	{"DynamoDB capacity consumed", "DynamoDB throttle events"},
}

// DashboardTitles returns the titles of the dashboard's graphs in order.
func DashboardTitles() []string {
	var out []string
	for _, row := range dashboardRows {
		out = append(out, row...)
	}
	return out
}

func (s *LimiterStack) addDashboard() {
	period := awscdk.Duration_Minutes(jsii.Number(1))
	opts := func(statistic, label string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String(statistic), Label: jsii.String(label)}
	}
	emf := func(fn, name, statistic, label string) awscloudwatch.IMetric {
		return s.fnMetric(fn, name, statistic).With(opts(statistic, label))
	}
	graph := func(title string, left []awscloudwatch.IMetric, right []awscloudwatch.IMetric) awscloudwatch.IWidget {
		props := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)}
		if len(right) > 0 {
			props.Right = &right
		}
		return awscloudwatch.NewGraphWidget(props)
	}
	fns := []struct{ name, label string }{{FunctionAcquire, "acquire"}, {FunctionAdmin, "admin"}, {FunctionAggregator, "aggregator"}}
	perFn := func(metric func(name string) awscloudwatch.IMetric) []awscloudwatch.IMetric {
		var out []awscloudwatch.IMetric
		for _, f := range fns {
			out = append(out, metric(f.name))
		}
		return out
	}
	table := func(name, label string) awscloudwatch.IMetric {
		return s.Table.Metric(jsii.String(name), opts("Sum", label))
	}
	agg := s.Functions[FunctionAggregator]
	widgets := map[string]awscloudwatch.IWidget{
		"API requests and errors": graph("API requests and errors",
			[]awscloudwatch.IMetric{s.Stage.MetricCount(opts("Sum", "requests"))},
			[]awscloudwatch.IMetric{s.Stage.MetricClientError(opts("Sum", "4xx")), s.Stage.MetricServerError(opts("Sum", "5xx"))}),
		"API latency (ms)": graph("API latency (ms)", []awscloudwatch.IMetric{
			s.Stage.MetricLatency(opts("p50", "p50")), s.Stage.MetricLatency(opts("p99", "p99")),
			s.Stage.MetricIntegrationLatency(opts("p99", "integration p99")),
		}, nil),
		"API 403 (IAM refused)": graph("API 403 (IAM refused)", []awscloudwatch.IMetric{s.ForbiddenMetric.With(opts("Sum", "403"))}, nil),
		"Acquire outcomes": graph("Acquire outcomes", []awscloudwatch.IMetric{
			emf(FunctionAcquire, MetricAcquires, "Sum", "acquires"), emf(FunctionAcquire, MetricLeaseSettles, "Sum", "lease settles"),
			emf(FunctionAcquire, MetricRefusals, "Sum", "refusals (429)"),
		}, []awscloudwatch.IMetric{
			emf(FunctionAcquire, MetricDegraded, "Sum", "degraded (fail open)"), emf(FunctionAcquire, MetricUnavailable, "Sum", "unavailable (503)"),
			emf(FunctionAcquire, MetricServerErrors, "Sum", "5xx"), emf(FunctionAcquire, MetricClientErrors, "Sum", "4xx (not 429)"),
		}),
		"Acquire function latency (ms)": graph("Acquire function latency (ms)", []awscloudwatch.IMetric{
			emf(FunctionAcquire, MetricLatency, "p50", "p50"), emf(FunctionAcquire, MetricLatency, "p99", "p99"),
		}, nil),
		"Admin outcomes": graph("Admin outcomes", []awscloudwatch.IMetric{emf(FunctionAdmin, MetricRequests, "Sum", "requests")},
			[]awscloudwatch.IMetric{emf(FunctionAdmin, MetricServerErrors, "Sum", "5xx"), emf(FunctionAdmin, MetricClientErrors, "Sum", "4xx")}),
		"Lambda invocations and errors": graph("Lambda invocations and errors",
			perFn(func(n string) awscloudwatch.IMetric {
				return s.Functions[n].MetricInvocations(opts("Sum", n+" invocations"))
			}),
			perFn(func(n string) awscloudwatch.IMetric { return s.Functions[n].MetricErrors(opts("Sum", n+" errors")) })),
		"Lambda throttles": graph("Lambda throttles",
			perFn(func(n string) awscloudwatch.IMetric { return s.Functions[n].MetricThrottles(opts("Sum", n)) }), nil),
		"Lambda p99 duration (ms)": graph("Lambda p99 duration (ms)",
			perFn(func(n string) awscloudwatch.IMetric { return s.Functions[n].MetricDuration(opts("p99", n)) }), nil),
		"Aggregator: records and usage": graph("Aggregator: records and usage", []awscloudwatch.IMetric{
			emf(FunctionAggregator, MetricRecords, "Sum", "records"), emf(FunctionAggregator, MetricApplied, "Sum", "usage applied"),
			emf(FunctionAggregator, MetricSnapshotWrites, "Sum", "snapshot writes"),
		}, []awscloudwatch.IMetric{emf(FunctionAggregator, MetricRetried, "Sum", "retried")}),
		"Aggregator: stream lag (ms)": graph("Aggregator: stream lag (ms)", []awscloudwatch.IMetric{
			agg.Metric(jsii.String("IteratorAge"), opts("Maximum", "iterator age")),
		}, []awscloudwatch.IMetric{emf(FunctionAggregator, MetricBatchLatency, "p99", "batch p99")}),
		"Aggregator: lost usage": graph("Aggregator: lost usage", []awscloudwatch.IMetric{
			emf(FunctionAggregator, MetricMalformed, "Sum", "malformed records"),
			s.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(opts("Maximum", "DLQ messages")),
		}, nil),
		"DynamoDB capacity consumed": graph("DynamoDB capacity consumed", []awscloudwatch.IMetric{
			table("ConsumedWriteCapacityUnits", "WCU"), table("ConsumedReadCapacityUnits", "RCU"),
		}, nil),
		"DynamoDB throttle events": graph("DynamoDB throttle events", []awscloudwatch.IMetric{
			table("ReadThrottleEvents", "table reads"), table("WriteThrottleEvents", "table writes"),
			s.indexMetric(IndexGSI1, "WriteThrottleEvents").With(opts("Sum", "GSI1 writes")),
			s.indexMetric(IndexGSI2, "WriteThrottleEvents").With(opts("Sum", "GSI2 writes")),
			s.indexMetric(IndexGSI1, "ReadThrottleEvents").With(opts("Sum", "GSI1 reads")),
			s.indexMetric(IndexGSI2, "ReadThrottleEvents").With(opts("Sum", "GSI2 reads")),
		}, nil),
	}
	s.Dashboard = awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	if len(s.Alarms) > 0 {
		var alarms []interfacesawscloudwatch.IAlarmRef
		for _, id := range AlarmIDs() {
			alarms = append(alarms, s.Alarms[id])
		}
		s.Dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(24), Height: jsii.Number(4),
		}))
	}
	for _, row := range dashboardRows {
		ws := make([]awscloudwatch.IWidget, 0, len(row))
		for _, title := range row {
			ws = append(ws, widgets[title])
		}
		s.Dashboard.AddWidgets(ws...)
	}
}
