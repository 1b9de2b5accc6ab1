package limiterstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// Metric names the functions write in Embedded Metric Format (shared/metrics, dimension
// FunctionName and, for the HTTP functions, FunctionName+Route). TestMetricNamesMatchCode reads
// shared/metrics and fails when the two drift.
const (
	MetricRequests       = "Requests"
	MetricLatency        = "Latency"
	MetricClientErrors   = "ClientErrors"
	MetricRefusals       = "Refusals"
	MetricServerErrors   = "ServerErrors"
	MetricUnavailable    = "Unavailable"
	MetricDegraded       = "Degraded"
	MetricAcquires       = "Acquires"
	MetricLeaseSettles   = "LeaseSettles"
	MetricRecords        = "Records"
	MetricApplied        = "UsageApplied"
	MetricMalformed      = "MalformedRecords"
	MetricRetried        = "RecordsRetried"
	MetricSnapshotWrites = "SnapshotWrites"
	MetricBatchLatency   = "BatchLatency"
	// MetricForbidden counts 403 answers of the API, from its access logs (dimension ApiId).
	MetricForbidden = "ApiForbidden"
)

// fnMetric returns an EMF metric of function fn with statistic over the alarm period.
func (s *LimiterStack) fnMetric(fn, name, statistic string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(s.Props.MetricsNamespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"FunctionName": s.Functions[fn].FunctionName()},
		Statistic:     jsii.String(statistic),
		Period:        awscdk.Duration_Seconds(jsii.Number(alarmPeriod.Seconds())),
	})
}

// indexMetric returns a DynamoDB metric of one of the table's indexes (Sum over the period).
func (s *LimiterStack) indexMetric(index, name string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  jsii.String("AWS/DynamoDB"),
		MetricName: jsii.String(name),
		DimensionsMap: &map[string]*string{
			"TableName": s.Table.TableName(), "GlobalSecondaryIndexName": jsii.String(index),
		},
		Statistic: jsii.String("Sum"),
		Period:    awscdk.Duration_Seconds(jsii.Number(alarmPeriod.Seconds())),
	})
}
