package limiterstack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func timeSeconds(n int) time.Duration { return time.Duration(n) * time.Second }

func appWithContext(ctx map[string]any) awscdk.App {
	return awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(filepath.Join(testRoot, "cdk.out.ctx"))})
}

func TestDefaultProps(t *testing.T) {
	p := DefaultProps()
	equal(t, "APIName", p.APIName, "zae-limiter")
	equal(t, "TableName", p.TableName, "")
	equal(t, "DeletionProtection", p.DeletionProtection, true)
	equal(t, "RemovalPolicy", p.RemovalPolicy, awscdk.RemovalPolicy_RETAIN)
	equal(t, "LogLevel", p.LogLevel, "INFO")
	equal(t, "LogRetentionDays", p.LogRetentionDays, 30)
	equal(t, "SnapshotRetentionDays", p.SnapshotRetentionDays, 90)
	equal(t, "AuditRetentionDays", p.AuditRetentionDays, 365)
	equal(t, "memory", []int{p.AcquireMemoryMB, p.AdminMemoryMB, p.AggregatorMemoryMB}, []int{256, 256, 256})
	equal(t, "timeouts", []time.Duration{p.AcquireTimeout, p.AdminTimeout, p.AggregatorTimeout},
		[]time.Duration{10 * time.Second, 15 * time.Second, 60 * time.Second})
	equal(t, "Tracing", p.Tracing, false)
	equal(t, "throttle", []int{p.ThrottleRateLimit, p.ThrottleBurstLimit}, []int{1000, 2000})
	equal(t, "stream", []any{p.StreamBatchSize, p.StreamBatchingWindow, p.StreamRetryAttempts, p.StreamMaxRecordAge},
		[]any{100, 5 * time.Second, -1, 18 * time.Hour})
	equal(t, "Alarms", p.Alarms, true)
	equal(t, "AlarmTopicArn", p.AlarmTopicArn, "")
}

func TestPropsFromContext(t *testing.T) {
	// cdk.json gives JSON types, `cdk -c` gives strings: both are accepted.
	app := appWithContext(map[string]any{
		CtxAssetRoot:             "/opt/bin",
		CtxTableName:             "limits",
		CtxAPIName:               "limits-api",
		CtxDeletionProtection:    "false",
		CtxRemovalPolicy:         "Destroy",
		CtxLogLevel:              "DEBUG",
		CtxLogRetentionDays:      "7",
		CtxSnapshotRetentionDays: 30,
		CtxAuditRetentionDays:    "0",
		CtxAcquireMemoryMB:       512,
		CtxAdminMemoryMB:         "1024",
		CtxAggregatorMemoryMB:    2048,
		CtxTracing:               true,
		CtxThrottleRateLimit:     "50",
		CtxThrottleBurstLimit:    100,
		CtxAlarms:                "false",
		CtxAlarmTopicArn:         testAlarmTopicArn,
		CtxStageName:             "live",
		CtxEnvironment:           "production",
		CtxTags:                  `{"team":"limits","cost-center":"42"}`,
		CtxLogFormat:             "text",
		CtxMetricsNamespace:      "Limits/Prod",
		CtxAcquireReserved:       "100",
		CtxAPILatencyAlarmMs:     250,
	})
	p, err := PropsFromContext(app.Node(), "/default/bin")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultProps()
	want.AssetRoot = "/opt/bin"
	want.TableName = "limits"
	want.APIName = "limits-api"
	want.DeletionProtection = false
	want.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	want.LogLevel = "DEBUG"
	want.LogRetentionDays = 7
	want.SnapshotRetentionDays = 30
	want.AuditRetentionDays = 0
	want.AcquireMemoryMB, want.AdminMemoryMB, want.AggregatorMemoryMB = 512, 1024, 2048
	want.Tracing = true
	want.ThrottleRateLimit, want.ThrottleBurstLimit = 50, 100
	want.Alarms = false
	want.AlarmTopicArn = testAlarmTopicArn
	want.StageName = "live"
	want.Environment = "production"
	want.TerminationProtection = true // production
	want.Tags = map[string]string{"team": "limits", "cost-center": "42"}
	want.LogFormat = "Text"
	want.MetricsNamespace = "Limits/Prod"
	want.AcquireReservedConcurrency = 100
	want.APILatencyAlarm = 250 * time.Millisecond
	equal(t, "props", p, want)

	// Termination protection follows the environment unless set; tags may be a JSON object.
	for _, c := range []struct {
		ctx  map[string]any
		want bool
	}{
		{map[string]any{CtxEnvironment: "prod"}, true},
		{map[string]any{CtxEnvironment: "staging"}, false},
		{map[string]any{CtxEnvironment: "production", CtxTerminationProtection: "false"}, false},
		{map[string]any{CtxTerminationProtection: true, CtxTags: map[string]any{"a": "b"}}, true},
	} {
		p, err := PropsFromContext(appWithContext(c.ctx).Node(), "/bin")
		if err != nil || p.TerminationProtection != c.want {
			t.Errorf("%v: termination protection %v (%v), want %v", c.ctx, p.TerminationProtection, err, c.want)
		}
	}

	// No context: the defaults, and the given asset root.
	p, err = PropsFromContext(appWithContext(map[string]any{}).Node(), "/default/bin")
	if err != nil {
		t.Fatal(err)
	}
	want = DefaultProps()
	want.AssetRoot = "/default/bin"
	equal(t, "defaults", p, want)
}

func TestPropsFromContextErrors(t *testing.T) {
	for key, value := range map[string]any{
		CtxLogRetentionDays:   "thirty",
		CtxAcquireMemoryMB:    12.5,
		CtxDeletionProtection: "maybe",
		CtxTracing:            1,
		CtxRemovalPolicy:      "snapshot",
		CtxTags:               `["a"]`,
		CtxAcquireReserved:    "lots",
		CtxAPILatencyAlarmMs:  "1s",
	} {
		_, err := PropsFromContext(appWithContext(map[string]any{key: value}).Node(), "/bin")
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("context %s=%v: error %v, want one naming the key", key, value, err)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() Props {
		p := DefaultProps()
		p.AssetRoot = assetRoot()
		return p
	}
	if err := (func() *Props { p := valid(); return &p }()).Validate(); err != nil {
		t.Fatalf("defaults with assets: %v", err)
	}
	empty := t.TempDir()
	partial := t.TempDir()
	if err := os.MkdirAll(filepath.Join(partial, "acquire"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "acquire", "bootstrap"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mutate func(*Props)
		want   string
	}{
		"no asset root":      {func(p *Props) { p.AssetRoot = "" }, "AssetRoot is empty"},
		"no bootstraps":      {func(p *Props) { p.AssetRoot = empty }, "function acquire"},
		"missing admin":      {func(p *Props) { p.AssetRoot = partial }, "function admin"},
		"retention":          {func(p *Props) { p.LogRetentionDays = 10 }, "LogRetentionDays 10"},
		"snapshot retention": {func(p *Props) { p.SnapshotRetentionDays = 0 }, "SnapshotRetentionDays"},
		"audit retention":    {func(p *Props) { p.AuditRetentionDays = -1 }, "AuditRetentionDays -1"},
		"memory":             {func(p *Props) { p.AdminMemoryMB = 64 }, "AdminMemoryMB 64"},
		"timeout":            {func(p *Props) { p.AggregatorTimeout = 1500 * time.Millisecond }, "AggregatorTimeout"},
		"API timeout":        {func(p *Props) { p.AcquireTimeout = 45 * time.Second }, "30 s integration timeout"},
		"throttle":           {func(p *Props) { p.ThrottleBurstLimit = 0 }, "throttle"},
		"batch size":         {func(p *Props) { p.StreamBatchSize = 0 }, "StreamBatchSize"},
		"batching window":    {func(p *Props) { p.StreamBatchingWindow = 10 * time.Minute }, "StreamBatchingWindow"},
		"retries":            {func(p *Props) { p.StreamRetryAttempts = -2 }, "StreamRetryAttempts"},
		"record age":         {func(p *Props) { p.StreamMaxRecordAge = 24 * time.Hour }, "StreamMaxRecordAge"},
		"removal policy":     {func(p *Props) { p.RemovalPolicy = awscdk.RemovalPolicy_SNAPSHOT }, "RemovalPolicy"},
		"API name":           {func(p *Props) { p.APIName = "" }, "APIName"},
		"alarm topic ARN":    {func(p *Props) { p.AlarmTopicArn = "not-an-arn" }, `alarmTopicArn "not-an-arn"`},
		"alarm topic queue":  {func(p *Props) { p.AlarmTopicArn = "arn:aws:sqs:us-east-1:123456789012:q" }, "not an SNS topic ARN"},
		"stage name":         {func(p *Props) { p.StageName = "v1/live" }, `stageName "v1/live"`},
		"table name":         {func(p *Props) { p.TableName = "rate limits" }, `tableName "rate limits"`},
		"environment":        {func(p *Props) { p.Environment = "Prod!" }, `environment "Prod!"`},
		"tag key":            {func(p *Props) { p.Tags = map[string]string{"aws:x": "y"} }, `tag "aws:x"`},
		"log level":          {func(p *Props) { p.LogLevel = "VERBOSE" }, `logLevel "VERBOSE"`},
		"log format":         {func(p *Props) { p.LogFormat = "XML" }, `logFormat "XML"`},
		"metrics namespace":  {func(p *Props) { p.MetricsNamespace = "AWS/Lambda" }, `metricsNamespace "AWS/Lambda"`},
		"reserved":           {func(p *Props) { p.AcquireReservedConcurrency = -1 }, "acquireReservedConcurrency -1"},
		"latency alarm":      {func(p *Props) { p.APILatencyAlarm = time.Minute }, "APILatencyAlarm"},
	} {
		p := valid()
		c.mutate(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	// New refuses invalid props before creating anything.
	p := valid()
	p.AssetRoot = empty
	if _, err := New(appWithContext(map[string]any{}), "Invalid", p); err == nil {
		t.Error("New accepted an asset root without bootstraps")
	}
}
