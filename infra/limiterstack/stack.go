package limiterstack

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Table schema. It mirrors shared/storage (keys.go and schema.go: TableDefinition), which
// creates the same table in DynamoDB Local; TestTableSchemaMatchesStorage checks the two agree.
const (
	AttrPK     = "PK"     // table partition key (String)
	AttrSK     = "SK"     // table sort key (String)
	AttrGSI1PK = "GSI1PK" // GSI1 partition key: P#{parent}
	AttrGSI1SK = "GSI1SK" // GSI1 sort key: E#{entity}
	AttrGSI2PK = "GSI2PK" // GSI2 partition key: R#{resource}
	AttrGSI2SK = "GSI2SK" // GSI2 sort key: B#{entity} or U#{window}#{start}#{entity}
	AttrTTL    = "ttl"    // TTL attribute, epoch seconds
	// IndexGSI1 maps a parent entity to its children.
	IndexGSI1 = "GSI1"
	// IndexGSI2 maps a resource to its buckets and usage snapshots.
	IndexGSI2 = "GSI2"
)

// GSI2NonKeyAttributes are the attributes GSI2 projects besides the keys (INCLUDE): what a
// per-resource usage query reads. An acquire writes none of them (it only changes e#n, u#n, acq
// and ts of a bucket item), so an acquire never writes to GSI2 and pays no index write. GSI1
// projects ALL: only child entity items carry GSI1 keys, they are small and written by the admin
// function alone, so listing a parent's children returns their metadata in one Query at no cost
// to the acquire path.
var GSI2NonKeyAttributes = []string{"entity_id", "resource", "window", "window_start", "counters", "acquires"}

// BucketKeyPrefix is the partition-key prefix of bucket items, the only items whose changes the
// aggregator consumes.
const BucketKeyPrefix = "B#"

// LimiterStack is the stack and the constructs callers and tests may inspect.
type LimiterStack struct {
	awscdk.Stack

	// Props are the settings the stack was built with (after defaults).
	Props Props
	// Table is the limiter's single DynamoDB table.
	Table awsdynamodb.Table
	// Functions maps FunctionAcquire, FunctionAdmin and FunctionAggregator to their functions.
	Functions map[string]awslambda.Function
	// Roles maps each function name to its execution role.
	Roles map[string]awsiam.Role
	// LogGroups maps each function name, and "api" for the access logs, to its log group.
	LogGroups map[string]awslogs.LogGroup
	// API is the HTTP API in front of the acquire and admin functions.
	API awsapigatewayv2.HttpApi
	// Stage is the API's $default stage (throttling and access logs).
	Stage awsapigatewayv2.HttpStage
	// AcquireCallerPolicy allows calling the acquire function and nothing else: execute-api:Invoke
	// on the acquire routes of the API, and lambda:InvokeFunction on the function. Attach it to
	// the roles of the limiter's callers.
	AcquireCallerPolicy awsiam.ManagedPolicy
	// AdminPolicy allows execute-api:Invoke on the admin routes (entities, limits, usage).
	AdminPolicy awsiam.ManagedPolicy
	// ForbiddenMetric counts the API's 403 answers (IAM refused the caller), from its access logs.
	ForbiddenMetric awscloudwatch.Metric
	// Dashboard is the stack's CloudWatch dashboard.
	Dashboard awscloudwatch.Dashboard
	// DeadLetterQueue receives the stream positions of batches the aggregator gave up on.
	DeadLetterQueue awssqs.Queue
	// StreamMapping is the aggregator's event source mapping on the table's stream.
	StreamMapping awslambda.EventSourceMapping
	// Alarms maps an alarm's id (see alarms.go) to the alarm; empty when Props.Alarms is false.
	Alarms map[string]awscloudwatch.Alarm
}

// New builds the stack with id under scope. It returns an error for settings that cannot be
// deployed (see Props.Validate), before creating anything.
func New(scope constructs.Construct, id string, props Props) (*LimiterStack, error) {
	if err := props.Validate(); err != nil {
		return nil, err
	}
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("zae-limiter: token-bucket rate limiter on DynamoDB (acquire/admin API, stream aggregator)")
	}
	if sp.TerminationProtection == nil {
		sp.TerminationProtection = jsii.Bool(props.TerminationProtection)
	}
	s := &LimiterStack{
		Stack:     awscdk.NewStack(scope, jsii.String(id), &sp),
		Props:     props,
		Functions: map[string]awslambda.Function{},
		Roles:     map[string]awsiam.Role{},
		LogGroups: map[string]awslogs.LogGroup{},
		Alarms:    map[string]awscloudwatch.Alarm{},
	}
	tags := awscdk.Tags_Of(s.Stack)
	// Dashboards take no tags in the CloudFormation schema cfn-lint checks against.
	tagProps := &awscdk.TagProps{ExcludeResourceTypes: jsii.Strings("AWS::CloudWatch::Dashboard")}
	tags.Add(jsii.String("Project"), jsii.String("zae-limiter"), tagProps)
	tags.Add(jsii.String("Environment"), jsii.String(props.Environment), tagProps)
	keys := make([]string, 0, len(props.Tags))
	for k := range props.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a fixed order: the template must not change between runs
	for _, k := range keys {
		tags.Add(jsii.String(k), jsii.String(props.Tags[k]), tagProps)
	}
	s.addTable()
	s.addFunctions()
	s.addAggregatorStream()
	s.addAPI()
	s.addCallerPolicies()
	if props.Alarms {
		s.addAlarms()
	}
	s.addDashboard()
	s.addOutputs()
	s.addNagSuppressions()
	return s, nil
}

func (s *LimiterStack) addTable() {
	p := s.Props
	str := func(name string) *awsdynamodb.Attribute {
		return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
	}
	var tableName *string
	if p.TableName != "" {
		tableName = jsii.String(p.TableName)
	}
	s.Table = awsdynamodb.NewTable(s.Stack, jsii.String("Table"), &awsdynamodb.TableProps{
		TableName:    tableName,
		PartitionKey: str(AttrPK),
		SortKey:      str(AttrSK),
		// On-demand: traffic is bursty by nature (it is a rate limiter) and needs no capacity
		// planning; an acquire is one small conditional write.
		BillingMode: awsdynamodb.BillingMode_PAY_PER_REQUEST,
		// The aggregator derives usage from the old and new image of each bucket change.
		Stream:              awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES,
		TimeToLiveAttribute: jsii.String(AttrTTL),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(p.DeletionProtection),
		RemovalPolicy:      p.RemovalPolicy,
	})
	s.Table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(IndexGSI1),
		PartitionKey:   str(AttrGSI1PK),
		SortKey:        str(AttrGSI1SK),
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
	s.Table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:        jsii.String(IndexGSI2),
		PartitionKey:     str(AttrGSI2PK),
		SortKey:          str(AttrGSI2SK),
		ProjectionType:   awsdynamodb.ProjectionType_INCLUDE,
		NonKeyAttributes: jsii.Strings(GSI2NonKeyAttributes...),
	})
}

// functionSpec is what differs between the three functions.
type functionSpec struct {
	name, id, description string
	memoryMB              int
	timeout               time.Duration
	env                   map[string]string
}

func (s *LimiterStack) addFunctions() {
	p := s.Props
	specs := []functionSpec{
		{
			name: FunctionAcquire, id: "Acquire",
			description: "zae-limiter acquire: acquire, leases, availability",
			// 256 MB: Lambda allocates CPU in proportion to memory, and acquire is on the
			// caller's critical path; the Go binary itself needs far less.
			memoryMB: p.AcquireMemoryMB,
			// 10 s: an acquire is one or two DynamoDB round trips (milliseconds) plus the SDK's
			// bounded retries; anything longer is an outage the caller should see quickly, and
			// it stays well under the HTTP API's 30 s integration limit.
			timeout: p.AcquireTimeout,
		},
		{
			name: FunctionAdmin, id: "Admin",
			description: "zae-limiter admin: entities, limits, system defaults",
			// 256 MB: same CPU argument; admin calls are rare but may page through a Query.
			memoryMB: p.AdminMemoryMB,
			// 15 s: admin calls may touch several items (a cascade of deletes or a paged
			// list), still well under the HTTP API's 30 s integration limit.
			timeout: p.AdminTimeout,
			env: map[string]string{
				"AUDIT_RETENTION_DAYS": fmt.Sprint(p.AuditRetentionDays),
			},
		},
		{
			name: FunctionAggregator, id: "Aggregator",
			description: "zae-limiter aggregator: bucket changes on the stream -> usage snapshots",
			// 256 MB: a batch of up to 100 records is folded in memory into a handful of
			// snapshot updates; CPU, not memory, bounds it.
			memoryMB: p.AggregatorMemoryMB,
			// 60 s: one batch becomes up to a few hundred snapshot UpdateItems with retries;
			// a longer timeout would only delay bisection of a poisoned batch.
			timeout: p.AggregatorTimeout,
			env: map[string]string{
				"SNAPSHOT_RETENTION_DAYS": fmt.Sprint(p.SnapshotRetentionDays),
			},
		},
	}
	tracing := awslambda.Tracing_DISABLED
	if p.Tracing {
		tracing = awslambda.Tracing_ACTIVE
	}
	for _, spec := range specs {
		env := map[string]*string{
			"TABLE_NAME":        s.Table.TableName(),
			"LOG_LEVEL":         jsii.String(p.LogLevel),
			"METRICS_NAMESPACE": jsii.String(p.MetricsNamespace),
		}
		for k, v := range spec.env {
			env[k] = jsii.String(v)
		}
		// An explicit log group (instead of the implicit /aws/lambda/<name>) carries the
		// retention and removal policy in the template, needs no log-retention custom resource,
		// and lets the role write to exactly this group.
		logGroup := awslogs.NewLogGroup(s.Stack, jsii.String(spec.id+"LogGroup"), &awslogs.LogGroupProps{
			Retention:     retentionDays[p.LogRetentionDays],
			RemovalPolicy: p.RemovalPolicy,
		})
		// An explicit role instead of the default one: the default attaches the AWS managed
		// AWSLambdaBasicExecutionRole, which allows writing to every log group in the account.
		role := awsiam.NewRole(s.Stack, jsii.String(spec.id+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
			Description: jsii.String("Execution role of the zae-limiter " + spec.name + " function"),
		})
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("WriteOwnLogs"),
			Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources: jsii.Strings(*logGroup.LogGroupArn()),
		}))
		props := &awslambda.FunctionProps{
			Description: jsii.String(spec.description),
			// A custom runtime running the bootstrap built by `make build`
			// (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
			Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
			Architecture: awslambda.Architecture_ARM_64(),
			Handler:      jsii.String("bootstrap"),
			Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(p.AssetRoot, spec.name)), nil),
			MemorySize:   jsii.Number(float64(spec.memoryMB)),
			Timeout:      awscdk.Duration_Seconds(jsii.Number(spec.timeout.Seconds())),
			Environment:  &env,
			Role:         role,
			LogGroup:     logGroup,
			Tracing:      tracing,
		}
		if p.LogFormat == "JSON" {
			props.LoggingFormat = awslambda.LoggingFormat_JSON
			// Lambda filters JSON lines by their "level"; an EMF metrics line has none and
			// counts as INFO, so any level above TRACE would drop metrics. LOG_LEVEL filters
			// the functions' own lines.
			props.ApplicationLogLevelV2 = awslambda.ApplicationLogLevel_TRACE
			props.SystemLogLevelV2 = awslambda.SystemLogLevel_INFO
		}
		if spec.name == FunctionAcquire && p.AcquireReservedConcurrency > 0 {
			props.ReservedConcurrentExecutions = jsii.Number(float64(p.AcquireReservedConcurrency))
		}
		fn := awslambda.NewFunction(s.Stack, jsii.String(spec.id+"Function"), props)
		// CDK makes the function depend on its role and on the role's policy; the role is
		// already a dependency through Fn::GetAtt (cfn-lint W3005). Depending on the policy
		// alone keeps the order that matters: permissions exist before the function runs.
		fn.Node().DefaultChild().(awscdk.CfnResource).AddOverride(jsii.String("DependsOn"),
			[]*string{s.Stack.GetLogicalId(role.Node().FindChild(jsii.String("DefaultPolicy")).Node().DefaultChild().(awscdk.CfnElement))})
		s.Functions[spec.name] = fn
		s.Roles[spec.name] = role
		s.LogGroups[spec.name] = logGroup
	}
	s.grantTableAccess()
}

func (s *LimiterStack) addAggregatorStream() {
	p := s.Props
	// The DLQ receives the stream position (shard, sequence numbers) of a batch the aggregator
	// gave up on, not the records; docs/deploy.md has the runbook.
	s.DeadLetterQueue = awssqs.NewQueue(s.Stack, jsii.String("AggregatorDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		RemovalPolicy:   p.RemovalPolicy,
	})
	fn := s.Functions[FunctionAggregator]
	// An explicit event source mapping rather than awslambdaeventsources.DynamoEventSource:
	// that one grants dynamodb:ListStreams on "*", and the role here is scoped to the stream.
	opts := &awslambda.EventSourceMappingOptions{
		EventSourceArn:   s.Table.TableStreamArn(),
		StartingPosition: awslambda.StartingPosition_TRIM_HORIZON,
		// Only inserts and updates of bucket items carry usage: a REMOVE (entity deleted, TTL)
		// consumes nothing and the aggregator skips it, and entity, limit, lease and snapshot
		// writes (including the aggregator's own) carry none; they are filtered out before they
		// cost an invocation.
		Filters: &[]*map[string]interface{}{
			awslambda.FilterCriteria_Filter(&map[string]interface{}{
				"eventName": awslambda.FilterRule_Or(jsii.String("INSERT"), jsii.String("MODIFY")),
				"dynamodb": map[string]interface{}{
					"Keys": map[string]interface{}{
						AttrPK: map[string]interface{}{"S": awslambda.FilterRule_BeginsWith(jsii.String(BucketKeyPrefix))},
					},
				},
			}),
		},
		BatchSize:         jsii.Number(float64(p.StreamBatchSize)),
		MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(p.StreamBatchingWindow.Seconds())),
		// A failing batch is split in halves until the poisoned record is isolated; the
		// handler also reports the records it could not process (ReportBatchItemFailures), so
		// good records are not retried.
		BisectBatchOnError:      jsii.Bool(true),
		ReportBatchItemFailures: jsii.Bool(true),
		// Snapshot writes are idempotent (shared/usage: agg_seq), so retrying costs nothing but
		// time: a failing batch is retried until its records are StreamMaxRecordAge old, and
		// only then does its position go to the DLQ.
		MaxRecordAge: awscdk.Duration_Seconds(jsii.Number(p.StreamMaxRecordAge.Seconds())),
		OnFailure:    awslambdaeventsources.NewSqsDlq(s.DeadLetterQueue),
	}
	if p.StreamRetryAttempts >= 0 {
		opts.RetryAttempts = jsii.Number(float64(p.StreamRetryAttempts))
	}
	s.StreamMapping = fn.AddEventSourceMapping(jsii.String("TableStream"), opts)
	if p.StreamRetryAttempts < 0 {
		// CDK accepts 0..10000 only; -1 (retry until the record's maximum age) is said
		// explicitly in the template rather than left to the service default.
		s.StreamMapping.Node().DefaultChild().(awscdk.CfnResource).AddPropertyOverride(
			jsii.String("MaximumRetryAttempts"), jsii.Number(-1))
	}
}

// Route is one route of the HTTP API.
type Route struct {
	// Function is the name of the function serving the route.
	Function string
	// Method is the HTTP method (ANY for every method).
	Method awsapigatewayv2.HttpMethod
	// Path is the route's path, with {param} and {proxy+} variables.
	Path string
}

// Routes returns the API's routes: method, path and the function serving them. The acquire
// function gets the hot-path calls; the admin function everything under entities, resources and
// system (the collection itself and every sub-path). They are the routes of the one route table,
// internal/gateway/routes.txt of the root module, which `make run`'s gateway is built from:
// TestRoutesMatchGateway fails, with the difference, when the two drift.
func Routes() []Route {
	routes := []Route{
		{FunctionAcquire, awsapigatewayv2.HttpMethod_POST, "/v1/acquire"},
		{FunctionAcquire, awsapigatewayv2.HttpMethod_POST, "/v1/leases/{lease_id}/{action}"},
		{FunctionAcquire, awsapigatewayv2.HttpMethod_POST, "/v1/available"},
		{FunctionAcquire, awsapigatewayv2.HttpMethod_POST, "/v1/time-until-available"},
	}
	for _, coll := range []string{"entities", "resources", "system"} {
		routes = append(routes,
			Route{FunctionAdmin, awsapigatewayv2.HttpMethod_ANY, "/v1/" + coll},
			Route{FunctionAdmin, awsapigatewayv2.HttpMethod_ANY, "/v1/" + coll + "/{proxy+}"},
		)
	}
	return routes
}

// accessLogSettings implements awsapigatewayv2.IAccessLogSettings.
type accessLogSettings struct {
	destination awsapigatewayv2.IAccessLogDestination
	format      awsapigateway.AccessLogFormat
}

// Destination returns where the access logs go.
func (a *accessLogSettings) Destination() awsapigatewayv2.IAccessLogDestination {
	return a.destination
}

// Format returns the access log line format.
func (a *accessLogSettings) Format() awsapigateway.AccessLogFormat { return a.format }

// AccessLogFields are the JSON access log fields and the HTTP API context variables they hold.
// The caller's identity (IAM) is there because IAM authorization is the API's only gate.
var AccessLogFields = map[string]string{
	"apiId":              "$context.apiId",
	"requestId":          "$context.requestId",
	"requestTime":        "$context.requestTime",
	"ip":                 "$context.identity.sourceIp",
	"caller":             "$context.identity.caller",
	"userArn":            "$context.identity.userArn",
	"accountId":          "$context.identity.accountId",
	"httpMethod":         "$context.httpMethod",
	"routeKey":           "$context.routeKey",
	"path":               "$context.path",
	"protocol":           "$context.protocol",
	"status":             "$context.status",
	"responseLength":     "$context.responseLength",
	"responseLatency":    "$context.responseLatency",
	"integrationStatus":  "$context.integrationStatus",
	"integrationLatency": "$context.integrationLatency",
	"integrationError":   "$context.integrationErrorMessage",
	"errorMessage":       "$context.error.message",
}

func (s *LimiterStack) addAPI() {
	p := s.Props
	s.API = awsapigatewayv2.NewHttpApi(s.Stack, jsii.String("Api"), &awsapigatewayv2.HttpApiProps{
		ApiName:     jsii.String(p.APIName),
		Description: jsii.String("zae-limiter HTTP API (IAM authorization on every route)"),
		// The stage is added below with throttling and access logs.
		CreateDefaultStage: jsii.Bool(false),
		// SigV4-signed requests only: every route inherits this authorizer.
		DefaultAuthorizer: awsapigatewayv2authorizers.NewHttpIamAuthorizer(),
	})
	accessLogs := awslogs.NewLogGroup(s.Stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     retentionDays[p.LogRetentionDays],
		RemovalPolicy: p.RemovalPolicy,
	})
	s.LogGroups["api"] = accessLogs
	format, err := json.Marshal(AccessLogFields)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	s.Stage = s.API.AddStage(jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageOptions{
		StageName:  jsii.String(p.StageName),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(float64(p.ThrottleRateLimit)),
			BurstLimit: jsii.Number(float64(p.ThrottleBurstLimit)),
		},
		AccessLogSettings: &accessLogSettings{
			destination: awsapigatewayv2.NewLogGroupLogDestination(accessLogs),
			format:      awsapigateway.AccessLogFormat_Custom(jsii.String(string(format))),
		},
	})
	integrations := map[string]awsapigatewayv2.HttpRouteIntegration{}
	for _, name := range []string{FunctionAcquire, FunctionAdmin} {
		// Payload format 2.0; the handler dispatches on the request's path. The invoke
		// permission names this API (any stage, method and path) rather than each route:
		// per-route source ARNs would carry the literal {lease_id}/{proxy+} templates, which
		// need not match the ARN API Gateway presents for a concrete path.
		integrations[name] = awsapigatewayv2integrations.NewHttpLambdaIntegration(
			jsii.String(name+"Integration"), s.Functions[name], &awsapigatewayv2integrations.HttpLambdaIntegrationProps{
				PayloadFormatVersion:   awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
				ScopePermissionToRoute: jsii.Bool(false),
			})
	}
	// 403s never reach a function (API Gateway refuses the signature or the caller's IAM
	// permissions): count them from the access logs, per API.
	awslogs.NewMetricFilter(s.Stack, jsii.String("ApiForbiddenFilter"), &awslogs.MetricFilterProps{
		LogGroup:        accessLogs,
		FilterPattern:   awslogs.FilterPattern_StringValue(jsii.String("$.status"), jsii.String("="), jsii.String("403")),
		MetricNamespace: jsii.String(p.MetricsNamespace),
		MetricName:      jsii.String(MetricForbidden),
		MetricValue:     jsii.String("1"),
		Dimensions:      &map[string]*string{"ApiId": jsii.String("$.apiId")},
		Unit:            awscloudwatch.Unit_COUNT,
	})
	s.ForbiddenMetric = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(p.MetricsNamespace),
		MetricName:    jsii.String(MetricForbidden),
		DimensionsMap: &map[string]*string{"ApiId": s.API.ApiId()},
		Statistic:     jsii.String("Sum"),
		Period:        awscdk.Duration_Minutes(jsii.Number(5)),
	})
	iamAuth := awsapigatewayv2authorizers.NewHttpIamAuthorizer()
	for _, r := range Routes() {
		s.API.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(r.Path),
			Methods:     &[]awsapigatewayv2.HttpMethod{r.Method},
			Integration: integrations[r.Function],
			// Explicit although it is the API's default: no route may ever be open.
			Authorizer: iamAuth,
		})
	}
}

// executeAPIPath turns a route's path into the path of an execute-api ARN: each {param} or
// {proxy+} segment becomes *, which matches any segment(s) of a concrete request.
func executeAPIPath(path string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}

// routeARNs returns the execute-api ARNs of fn's routes on the stack's stage.
func (s *LimiterStack) routeARNs(fn string) []string {
	var arns []string
	for _, r := range Routes() {
		if r.Function != fn {
			continue
		}
		method := string(r.Method)
		if r.Method == awsapigatewayv2.HttpMethod_ANY {
			method = "*"
		}
		arns = append(arns, *s.API.ArnForExecuteApi(jsii.String(method), jsii.String(executeAPIPath(r.Path)), jsii.String(s.Props.StageName)))
	}
	return arns
}

func (s *LimiterStack) addCallerPolicies() {
	s.AcquireCallerPolicy = awsiam.NewManagedPolicy(s.Stack, jsii.String("AcquireCallerPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("Allows calling the zae-limiter acquire API (SigV4) and invoking its function (Lambda-to-Lambda), nothing else"),
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("CallAcquireRoutes"),
				Actions:   jsii.Strings("execute-api:Invoke"),
				Resources: jsii.Strings(s.routeARNs(FunctionAcquire)...),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("InvokeAcquireFunction"),
				Actions:   jsii.Strings("lambda:InvokeFunction"),
				Resources: jsii.Strings(*s.Functions[FunctionAcquire].FunctionArn()),
			}),
		},
	})
	s.AdminPolicy = awsiam.NewManagedPolicy(s.Stack, jsii.String("AdminPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("Allows calling the zae-limiter admin API (entities, stored limits, usage) with SigV4"),
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("CallAdminRoutes"),
				Actions:   jsii.Strings("execute-api:Invoke"),
				Resources: jsii.Strings(s.routeARNs(FunctionAdmin)...),
			}),
		},
	})
}

func (s *LimiterStack) addOutputs() {
	out := func(id, description string, value *string) {
		awscdk.NewCfnOutput(s.Stack, jsii.String(id), &awscdk.CfnOutputProps{
			Value:       value,
			Description: jsii.String(description),
		})
	}
	out("ApiUrl", "Base URL of the HTTP API (SigV4-signed requests, service execute-api)", s.Stage.Url())
	out("ApiId", "HTTP API id (execute-api ARNs, API Gateway metrics)", s.API.ApiId())
	out("TableName", "DynamoDB table name", s.Table.TableName())
	out("TableArn", "DynamoDB table ARN", s.Table.TableArn())
	out("TableStreamArn", "DynamoDB stream ARN (consumed by the aggregator)", s.Table.TableStreamArn())
	out("AcquireFunctionArn", "Acquire function ARN (Lambda-to-Lambda calls)", s.Functions[FunctionAcquire].FunctionArn())
	out("AdminFunctionArn", "Admin function ARN", s.Functions[FunctionAdmin].FunctionArn())
	out("AggregatorFunctionArn", "Aggregator function ARN", s.Functions[FunctionAggregator].FunctionArn())
	out("AcquireCallerPolicyArn", "Managed policy for callers: the acquire routes (execute-api:Invoke) and lambda:InvokeFunction on the acquire function", s.AcquireCallerPolicy.ManagedPolicyArn())
	out("AdminPolicyArn", "Managed policy for administrators: the admin routes (execute-api:Invoke)", s.AdminPolicy.ManagedPolicyArn())
	out("AggregatorDLQUrl", "Dead-letter queue of the aggregator's stream mapping (see docs/deploy.md)", s.DeadLetterQueue.QueueUrl())
	out("DashboardUrl", "CloudWatch dashboard of the limiter", awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("https://console.aws.amazon.com/cloudwatch/home?region="), awscdk.Aws_REGION(),
		jsii.String("#dashboards:name="), s.Dashboard.DashboardName(),
	}))
}

// alarmTopic returns the topic alarms notify, or nil.
func (s *LimiterStack) alarmTopic() awssns.ITopic {
	if s.Props.AlarmTopic != nil {
		return s.Props.AlarmTopic
	}
	if s.Props.AlarmTopicArn != "" {
		return awssns.Topic_FromTopicArn(s.Stack, jsii.String("AlarmTopic"), jsii.String(s.Props.AlarmTopicArn))
	}
	return nil
}
