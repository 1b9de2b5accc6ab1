// Package limiterstack defines the CloudFormation stack of the zae-limiter rate limiter: one
// DynamoDB table, the acquire and admin functions behind an IAM-authorized HTTP API, and the
// aggregator function on the table's stream, with least-privilege roles, alarms and outputs.
//
// The stack is env-agnostic (no account or region) so it synthesizes without AWS credentials.
package limiterstack

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
)

// Function names as they appear in asset folders (bin/<name>/bootstrap) and construct ids.
const (
	// FunctionAcquire serves acquire, lease and availability calls.
	FunctionAcquire = "acquire"
	// FunctionAdmin serves entity, limit and system administration calls.
	FunctionAdmin = "admin"
	// FunctionAggregator turns bucket changes on the table stream into usage snapshots.
	FunctionAggregator = "aggregator"
)

// FunctionNames lists the three functions in a fixed order.
var FunctionNames = []string{FunctionAcquire, FunctionAdmin, FunctionAggregator}

// Props configures a LimiterStack. DefaultProps returns the documented defaults; PropsFromContext
// applies CDK context values (cdk.json or `cdk -c key=value`) on top of them.
type Props struct {
	// StackProps is passed to awscdk.NewStack (description, tags, termination protection...).
	StackProps awscdk.StackProps

	// AssetRoot is the folder holding <function>/bootstrap for every function (context
	// `assetRoot`, default "bin" of the repository, built by `make build`).
	AssetRoot string

	// TableName is the table's physical name (context `tableName`); empty lets CloudFormation
	// generate one, which allows replacements.
	TableName string
	// APIName is the HTTP API's name (context `apiName`, default "zae-limiter").
	APIName string
	// StageName is the API stage (context `stageName`, default "$default", served at the API's
	// root; another name is served under /<name>/).
	StageName string

	// Environment names the deployment (context `environment`, default "dev"): it is the
	// stack's Environment tag, and "prod" or "production" turns termination protection on.
	Environment string
	// TerminationProtection protects the stack from deletion (context `terminationProtection`,
	// default true for a production Environment, false otherwise).
	TerminationProtection bool
	// Tags are added to every resource that supports tags, besides Project=zae-limiter and
	// Environment (context `tags`, a JSON object of strings).
	Tags map[string]string

	// DeletionProtection turns on the table's deletion protection (context
	// `deletionProtection`, default true).
	DeletionProtection bool
	// RemovalPolicy applies to the table, the log groups and the dead-letter queue when the stack
	// is deleted or they are replaced (context `removalPolicy`: retain|destroy, default
	// retain). Snapshot is not offered: none of these resource types supports it.
	RemovalPolicy awscdk.RemovalPolicy

	// LogLevel is the LOG_LEVEL of every function (context `logLevel`: DEBUG, INFO, WARN or
	// ERROR, default INFO). The functions filter their own lines by it.
	LogLevel string
	// LogFormat is Lambda's log format (context `logFormat`: JSON or Text, default JSON). JSON
	// turns Lambda's own lines (START, END, REPORT) into JSON too; the functions' lines are JSON
	// either way. Lambda's application log level stays TRACE: an EMF metrics line has no level,
	// and a higher Lambda level would drop it.
	LogFormat string
	// MetricsNamespace is the CloudWatch namespace of the functions' EMF metrics (context
	// `metricsNamespace`, default "ZaeLimiter"); metrics are told apart by FunctionName.
	MetricsNamespace string
	// LogRetentionDays is the retention of every log group, function and access logs (context
	// `logRetentionDays`, default 30). It must be a value CloudWatch Logs accepts.
	LogRetentionDays int
	// SnapshotRetentionDays is the aggregator's SNAPSHOT_RETENTION_DAYS: usage snapshots expire
	// through the table's TTL after that many days (context `snapshotRetentionDays`, default 90).
	SnapshotRetentionDays int
	// AuditRetentionDays is the admin function's AUDIT_RETENTION_DAYS: audit records of admin
	// changes expire through the table's TTL after that many days, 0 keeps them forever
	// (context `auditRetentionDays`, default 365, at most 36500).
	AuditRetentionDays int

	// AcquireMemoryMB, AdminMemoryMB and AggregatorMemoryMB are the functions' memory sizes
	// (contexts `acquireMemoryMB`, `adminMemoryMB`, `aggregatorMemoryMB`, default 256 each).
	AcquireMemoryMB, AdminMemoryMB, AggregatorMemoryMB int
	// AcquireTimeout, AdminTimeout and AggregatorTimeout are the functions' timeouts (defaults
	// 10 s, 15 s and 60 s; see the reasons in stack.go).
	AcquireTimeout, AdminTimeout, AggregatorTimeout time.Duration
	// Tracing turns on AWS X-Ray active tracing for every function (context `tracing`, default
	// false).
	Tracing bool
	// AcquireReservedConcurrency reserves that many concurrent executions for the acquire
	// function, which also caps it (context `acquireReservedConcurrency`, default 0: none).
	AcquireReservedConcurrency int

	// ThrottleRateLimit and ThrottleBurstLimit are the API stage's steady-state requests per
	// second and burst (contexts `throttleRateLimit`, `throttleBurstLimit`, defaults 1000, 2000).
	ThrottleRateLimit, ThrottleBurstLimit int

	// StreamBatchSize is the aggregator's maximum batch size (default 100).
	StreamBatchSize int
	// StreamBatchingWindow is how long the event source mapping gathers records (default 5 s).
	StreamBatchingWindow time.Duration
	// StreamRetryAttempts bounds the retries of a failing batch; -1 (the default) retries until
	// the batch's records are StreamMaxRecordAge old. Snapshot writes are idempotent, so a
	// retry never counts twice.
	StreamRetryAttempts int
	// StreamMaxRecordAge sends the position of records older than this to the dead-letter queue
	// instead of retrying them (default 18 h: a day of retries for an outage, and 6 h of the
	// stream's 24 h retention left to read the records named in the DLQ; see docs/deploy.md).
	StreamMaxRecordAge time.Duration

	// Alarms creates the CloudWatch alarms (context `alarms`, default true).
	Alarms bool
	// APILatencyAlarm is the API's p99 latency that raises the ApiLatencyP99 alarm (context
	// `apiLatencyAlarmMs`, default 1 s).
	APILatencyAlarm time.Duration
	// AlarmTopic, when set, receives every alarm's ALARM and OK notifications. From context,
	// `alarmTopicArn` imports an existing topic.
	AlarmTopic awssns.ITopic
	// AlarmTopicArn is the ARN of an existing SNS topic used when AlarmTopic is nil (context
	// `alarmTopicArn`, default none).
	AlarmTopicArn string
}

// DefaultProps returns the defaults documented in infra/README.md. AssetRoot is left empty: the
// caller decides where the built functions are.
func DefaultProps() Props {
	return Props{
		APIName:               "zae-limiter",
		StageName:             "$default",
		Environment:           "dev",
		LogFormat:             "JSON",
		MetricsNamespace:      "ZaeLimiter",
		APILatencyAlarm:       time.Second,
		DeletionProtection:    true,
		RemovalPolicy:         awscdk.RemovalPolicy_RETAIN,
		LogLevel:              "INFO",
		LogRetentionDays:      30,
		SnapshotRetentionDays: 90,
		AuditRetentionDays:    365,
		AcquireMemoryMB:       256,
		AdminMemoryMB:         256,
		AggregatorMemoryMB:    256,
		AcquireTimeout:        10 * time.Second,
		AdminTimeout:          15 * time.Second,
		AggregatorTimeout:     60 * time.Second,
		ThrottleRateLimit:     1000,
		ThrottleBurstLimit:    2000,
		StreamBatchSize:       100,
		StreamBatchingWindow:  5 * time.Second,
		StreamRetryAttempts:   -1,
		StreamMaxRecordAge:    18 * time.Hour,
		Alarms:                true,
	}
}

// Context keys read by PropsFromContext (cdk.json "context" or `cdk -c key=value`).
const (
	CtxAssetRoot             = "assetRoot"                  // Props.AssetRoot
	CtxTableName             = "tableName"                  // Props.TableName
	CtxAPIName               = "apiName"                    // Props.APIName
	CtxDeletionProtection    = "deletionProtection"         // Props.DeletionProtection
	CtxRemovalPolicy         = "removalPolicy"              // Props.RemovalPolicy: retain|destroy
	CtxLogLevel              = "logLevel"                   // Props.LogLevel
	CtxLogRetentionDays      = "logRetentionDays"           // Props.LogRetentionDays
	CtxSnapshotRetentionDays = "snapshotRetentionDays"      // Props.SnapshotRetentionDays
	CtxAuditRetentionDays    = "auditRetentionDays"         // Props.AuditRetentionDays
	CtxAcquireMemoryMB       = "acquireMemoryMB"            // Props.AcquireMemoryMB
	CtxAdminMemoryMB         = "adminMemoryMB"              // Props.AdminMemoryMB
	CtxAggregatorMemoryMB    = "aggregatorMemoryMB"         // Props.AggregatorMemoryMB
	CtxTracing               = "tracing"                    // Props.Tracing
	CtxThrottleRateLimit     = "throttleRateLimit"          // Props.ThrottleRateLimit
	CtxThrottleBurstLimit    = "throttleBurstLimit"         // Props.ThrottleBurstLimit
	CtxAlarms                = "alarms"                     // Props.Alarms
	CtxAlarmTopicArn         = "alarmTopicArn"              // Props.AlarmTopicArn
	CtxStageName             = "stageName"                  // Props.StageName
	CtxEnvironment           = "environment"                // Props.Environment
	CtxTerminationProtection = "terminationProtection"      // Props.TerminationProtection
	CtxTags                  = "tags"                       // Props.Tags: a JSON object of strings
	CtxLogFormat             = "logFormat"                  // Props.LogFormat: JSON|Text
	CtxMetricsNamespace      = "metricsNamespace"           // Props.MetricsNamespace
	CtxAcquireReserved       = "acquireReservedConcurrency" // Props.AcquireReservedConcurrency
	CtxAPILatencyAlarmMs     = "apiLatencyAlarmMs"          // Props.APILatencyAlarm, in ms
)

// IsProduction reports whether env names a production deployment ("prod" or "production", any
// case).
func IsProduction(env string) bool {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "prod", "production":
		return true
	}
	return false
}

// PropsFromContext returns DefaultProps with every context value found on node applied. Values
// may be JSON strings, numbers or booleans (cdk.json) or strings (`cdk -c key=value`).
// defaultAssetRoot is used when the context has no `assetRoot`.
func PropsFromContext(node constructs.Node, defaultAssetRoot string) (Props, error) {
	p := DefaultProps()
	p.AssetRoot = defaultAssetRoot
	get := func(key string) (any, bool) {
		v := node.TryGetContext(&key)
		return v, v != nil
	}
	var errs []string
	str := func(key string, dst *string) {
		if v, ok := get(key); ok {
			*dst = strings.TrimSpace(fmt.Sprint(v))
		}
	}
	integer := func(key string, dst *int) {
		if v, ok := get(key); ok {
			n, err := contextInt(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("context %s: %v", key, err))
				return
			}
			*dst = n
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := get(key); ok {
			b, err := contextBool(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("context %s: %v", key, err))
				return
			}
			*dst = b
		}
	}

	str(CtxAssetRoot, &p.AssetRoot)
	str(CtxTableName, &p.TableName)
	str(CtxAPIName, &p.APIName)
	boolean(CtxDeletionProtection, &p.DeletionProtection)
	if v, ok := get(CtxRemovalPolicy); ok {
		rp, err := ParseRemovalPolicy(fmt.Sprint(v))
		if err != nil {
			errs = append(errs, fmt.Sprintf("context %s: %v", CtxRemovalPolicy, err))
		} else {
			p.RemovalPolicy = rp
		}
	}
	str(CtxLogLevel, &p.LogLevel)
	integer(CtxLogRetentionDays, &p.LogRetentionDays)
	integer(CtxSnapshotRetentionDays, &p.SnapshotRetentionDays)
	integer(CtxAuditRetentionDays, &p.AuditRetentionDays)
	integer(CtxAcquireMemoryMB, &p.AcquireMemoryMB)
	integer(CtxAdminMemoryMB, &p.AdminMemoryMB)
	integer(CtxAggregatorMemoryMB, &p.AggregatorMemoryMB)
	boolean(CtxTracing, &p.Tracing)
	integer(CtxThrottleRateLimit, &p.ThrottleRateLimit)
	integer(CtxThrottleBurstLimit, &p.ThrottleBurstLimit)
	boolean(CtxAlarms, &p.Alarms)
	str(CtxAlarmTopicArn, &p.AlarmTopicArn)
	str(CtxStageName, &p.StageName)
	str(CtxEnvironment, &p.Environment)
	p.TerminationProtection = IsProduction(p.Environment)
	boolean(CtxTerminationProtection, &p.TerminationProtection)
	if v, ok := get(CtxTags); ok {
		tags, err := contextTags(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("context %s: %v", CtxTags, err))
		}
		p.Tags = tags
	}
	str(CtxLogFormat, &p.LogFormat)
	switch strings.ToLower(p.LogFormat) {
	case "json":
		p.LogFormat = "JSON"
	case "text":
		p.LogFormat = "Text"
	}
	p.LogLevel = strings.ToUpper(p.LogLevel)
	str(CtxMetricsNamespace, &p.MetricsNamespace)
	integer(CtxAcquireReserved, &p.AcquireReservedConcurrency)
	var latencyMs int
	if _, ok := get(CtxAPILatencyAlarmMs); ok {
		integer(CtxAPILatencyAlarmMs, &latencyMs)
		p.APILatencyAlarm = time.Duration(latencyMs) * time.Millisecond
	}

	if len(errs) > 0 {
		return p, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return p, nil
}

// contextTags reads a JSON object of strings, given as an object (cdk.json) or as its JSON text
// (`cdk -c tags='{"team":"limits"}'`).
func contextTags(v any) (map[string]string, error) {
	if str, ok := v.(string); ok {
		var m map[string]any
		if err := json.Unmarshal([]byte(str), &m); err != nil {
			return nil, fmt.Errorf("%q is not a JSON object", str)
		}
		v = m
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%v (%T) is not an object of strings", v, v)
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("tag %q: %v is not a string", k, x)
		}
		out[k] = s
	}
	return out, nil
}

func contextInt(v any) (int, error) {
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int(x), nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", x)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("%v (%T) is not an integer", v, v)
	}
}

func contextBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean", x)
		}
		return b, nil
	default:
		return false, fmt.Errorf("%v (%T) is not a boolean", v, v)
	}
}

// ParseRemovalPolicy maps retain or destroy (any case) to a RemovalPolicy.
func ParseRemovalPolicy(s string) (awscdk.RemovalPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "retain":
		return awscdk.RemovalPolicy_RETAIN, nil
	case "destroy":
		return awscdk.RemovalPolicy_DESTROY, nil
	}
	return "", fmt.Errorf("%q is not one of retain, destroy", s)
}

// retentionDays maps the day counts CloudWatch Logs accepts to the CDK enum.
var retentionDays = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS,
	5: awslogs.RetentionDays_FIVE_DAYS, 7: awslogs.RetentionDays_ONE_WEEK,
	14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS,
	120: awslogs.RetentionDays_FOUR_MONTHS, 150: awslogs.RetentionDays_FIVE_MONTHS,
	180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS,
	731: awslogs.RetentionDays_TWO_YEARS, 1096: awslogs.RetentionDays_THREE_YEARS,
	1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS,
	3288: awslogs.RetentionDays_NINE_YEARS, 3653: awslogs.RetentionDays_TEN_YEARS,
}

// snsTopicARN matches the ARN of a standard or FIFO SNS topic in any partition.
var snsTopicARN = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

var (
	tableName        = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	stageName        = regexp.MustCompile(`^(\$default|[A-Za-z0-9_-]{1,128})$`)
	environmentName  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	metricsNamespace = regexp.MustCompile(`^(?:[A-Za-z0-9.\-_/#:]{1,255})$`)
)

// Validate reports the first setting that cannot be deployed, including a missing bootstrap.
func (p *Props) Validate() error {
	if p.AssetRoot == "" {
		return fmt.Errorf("AssetRoot is empty: set context %s or run `make build` first", CtxAssetRoot)
	}
	for _, fn := range FunctionNames {
		path := filepath.Join(p.AssetRoot, fn, "bootstrap")
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("function %s: %v (run `make build`, or set context %s)", fn, err, CtxAssetRoot)
		}
		if st.IsDir() {
			return fmt.Errorf("function %s: %s is a directory, want the bootstrap executable", fn, path)
		}
	}
	if _, ok := retentionDays[p.LogRetentionDays]; !ok {
		return fmt.Errorf("LogRetentionDays %d is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)", p.LogRetentionDays)
	}
	if p.SnapshotRetentionDays < 1 {
		return fmt.Errorf("SnapshotRetentionDays %d must be at least 1", p.SnapshotRetentionDays)
	}
	if p.AuditRetentionDays < 0 || p.AuditRetentionDays > 36500 {
		return fmt.Errorf("AuditRetentionDays %d must be between 0 (keep forever) and 36500", p.AuditRetentionDays)
	}
	for name, mb := range map[string]int{"AcquireMemoryMB": p.AcquireMemoryMB, "AdminMemoryMB": p.AdminMemoryMB, "AggregatorMemoryMB": p.AggregatorMemoryMB} {
		if mb < 128 || mb > 10240 {
			return fmt.Errorf("%s %d must be between 128 and 10240", name, mb)
		}
	}
	for name, d := range map[string]time.Duration{"AcquireTimeout": p.AcquireTimeout, "AdminTimeout": p.AdminTimeout, "AggregatorTimeout": p.AggregatorTimeout} {
		if d < time.Second || d > 15*time.Minute || d%time.Second != 0 {
			return fmt.Errorf("%s %v must be whole seconds between 1s and 15m", name, d)
		}
	}
	// API Gateway's HTTP API integrations time out after 30 s at most.
	for name, d := range map[string]time.Duration{"AcquireTimeout": p.AcquireTimeout, "AdminTimeout": p.AdminTimeout} {
		if d > 30*time.Second {
			return fmt.Errorf("%s %v exceeds the HTTP API's 30 s integration timeout", name, d)
		}
	}
	if p.ThrottleRateLimit < 1 || p.ThrottleBurstLimit < 1 {
		return fmt.Errorf("throttle rate %d and burst %d must be positive", p.ThrottleRateLimit, p.ThrottleBurstLimit)
	}
	if p.StreamBatchSize < 1 || p.StreamBatchSize > 10000 {
		return fmt.Errorf("StreamBatchSize %d must be between 1 and 10000", p.StreamBatchSize)
	}
	if p.StreamBatchingWindow < 0 || p.StreamBatchingWindow > 5*time.Minute {
		return fmt.Errorf("StreamBatchingWindow %v must be between 0 and 5m", p.StreamBatchingWindow)
	}
	if p.StreamRetryAttempts < -1 || p.StreamRetryAttempts > 10000 {
		return fmt.Errorf("StreamRetryAttempts %d must be -1 (until StreamMaxRecordAge) or between 0 and 10000", p.StreamRetryAttempts)
	}
	// A DynamoDB stream keeps records 24 h: an older maximum age would never apply, and the
	// records of a DLQ message could no longer be read.
	if p.StreamMaxRecordAge < time.Minute || p.StreamMaxRecordAge >= 24*time.Hour || p.StreamMaxRecordAge%time.Second != 0 {
		return fmt.Errorf("StreamMaxRecordAge %v must be whole seconds from 1m to under 24h (the stream's retention)", p.StreamMaxRecordAge)
	}
	switch p.RemovalPolicy {
	case awscdk.RemovalPolicy_RETAIN, awscdk.RemovalPolicy_DESTROY:
	default:
		return fmt.Errorf("RemovalPolicy %q must be RETAIN or DESTROY", p.RemovalPolicy)
	}
	if p.APIName == "" {
		return fmt.Errorf("APIName is empty")
	}
	if p.TableName != "" && !tableName.MatchString(p.TableName) {
		return fmt.Errorf("%s %q must be 3 to 255 of A-Z a-z 0-9 _ . - (or empty: generated)", CtxTableName, p.TableName)
	}
	if !stageName.MatchString(p.StageName) {
		return fmt.Errorf("%s %q must be $default or 1 to 128 of A-Z a-z 0-9 _ -", CtxStageName, p.StageName)
	}
	if !environmentName.MatchString(p.Environment) {
		return fmt.Errorf("%s %q must be 1 to 32 of a-z 0-9 -, starting with a letter", CtxEnvironment, p.Environment)
	}
	for k, v := range p.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return fmt.Errorf("tag %q=%q: keys are 1 to 128 characters, not aws:…; values at most 256", k, v)
		}
	}
	switch p.LogLevel {
	case "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return fmt.Errorf("%s %q must be one of DEBUG, INFO, WARN, ERROR", CtxLogLevel, p.LogLevel)
	}
	switch p.LogFormat {
	case "JSON", "Text":
	default:
		return fmt.Errorf("%s %q must be JSON or Text", CtxLogFormat, p.LogFormat)
	}
	if !metricsNamespace.MatchString(p.MetricsNamespace) || strings.HasPrefix(p.MetricsNamespace, "AWS/") {
		return fmt.Errorf("%s %q must be 1 to 255 of A-Z a-z 0-9 . - _ / # :, not starting with AWS/", CtxMetricsNamespace, p.MetricsNamespace)
	}
	if p.AcquireReservedConcurrency < 0 || p.AcquireReservedConcurrency > 10000 {
		return fmt.Errorf("%s %d must be 0 (none) to 10000", CtxAcquireReserved, p.AcquireReservedConcurrency)
	}
	if p.APILatencyAlarm < 10*time.Millisecond || p.APILatencyAlarm > 30*time.Second {
		return fmt.Errorf("APILatencyAlarm %v must be between 10ms and 30s", p.APILatencyAlarm)
	}
	if p.AlarmTopicArn != "" && !snsTopicARN.MatchString(p.AlarmTopicArn) {
		return fmt.Errorf("%s %q is not an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<topic>)", CtxAlarmTopicArn, p.AlarmTopicArn)
	}
	return nil
}
