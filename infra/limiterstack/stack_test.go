package limiterstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

func TestTable(t *testing.T) {
	f := defaultStack(t)
	check(t, "one table", func() { f.tmpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(1)) })
	id := f.id(f.stack.Table)
	r := f.resource(t, id)
	p := f.props(t, id)

	key := func(pk, sk string) []any {
		return []any{
			map[string]any{"AttributeName": pk, "KeyType": "HASH"},
			map[string]any{"AttributeName": sk, "KeyType": "RANGE"},
		}
	}
	equal(t, "KeySchema", p["KeySchema"], key("PK", "SK"))
	var attrs []string
	for _, a := range p["AttributeDefinitions"].([]any) {
		a := a.(map[string]any)
		equal(t, "type of "+a["AttributeName"].(string), a["AttributeType"], "S")
		attrs = append(attrs, a["AttributeName"].(string))
	}
	equal(t, "AttributeDefinitions", sorted(attrs), []string{"GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "PK", "SK"})
	equal(t, "BillingMode", p["BillingMode"], "PAY_PER_REQUEST")
	equal(t, "StreamSpecification", p["StreamSpecification"], map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"})
	equal(t, "TimeToLiveSpecification", p["TimeToLiveSpecification"], map[string]any{"AttributeName": "ttl", "Enabled": true})
	equal(t, "PointInTimeRecoverySpecification", p["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true})
	equal(t, "DeletionProtectionEnabled", p["DeletionProtectionEnabled"], true)
	equal(t, "DeletionPolicy", r["DeletionPolicy"], "Retain")
	equal(t, "UpdateReplacePolicy", r["UpdateReplacePolicy"], "Retain")
	if _, named := p["TableName"]; named {
		t.Errorf("TableName is set by default: %v", p["TableName"])
	}
	equal(t, "GlobalSecondaryIndexes", p["GlobalSecondaryIndexes"], []any{
		map[string]any{"IndexName": "GSI1", "KeySchema": key("GSI1PK", "GSI1SK"), "Projection": map[string]any{"ProjectionType": "ALL"}},
		map[string]any{"IndexName": "GSI2", "KeySchema": key("GSI2PK", "GSI2SK"), "Projection": map[string]any{
			"ProjectionType":   "INCLUDE",
			"NonKeyAttributes": anys("entity_id", "resource", "window", "window_start", "counters", "acquires"),
		}},
	})
	// The same through the assertions library's matchers.
	check(t, "table matcher", func() {
		f.tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), &map[string]any{
			"DeletionPolicy": "Retain",
			"Properties": map[string]any{
				"BillingMode":         "PAY_PER_REQUEST",
				"StreamSpecification": map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"},
			},
		})
	})
}

func TestFunctions(t *testing.T) {
	f := defaultStack(t)
	check(t, "three functions", func() { f.tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(3)) })
	table := ref(f.id(f.stack.Table))
	want := map[string]struct {
		memory, timeout float64
		env             map[string]any
	}{
		FunctionAcquire:    {256, 10, map[string]any{"TABLE_NAME": table, "LOG_LEVEL": "INFO", "METRICS_NAMESPACE": "ZaeLimiter"}},
		FunctionAdmin:      {256, 15, map[string]any{"TABLE_NAME": table, "LOG_LEVEL": "INFO", "METRICS_NAMESPACE": "ZaeLimiter", "AUDIT_RETENTION_DAYS": "365"}},
		FunctionAggregator: {256, 60, map[string]any{"TABLE_NAME": table, "LOG_LEVEL": "INFO", "METRICS_NAMESPACE": "ZaeLimiter", "SNAPSHOT_RETENTION_DAYS": "90"}},
	}
	for _, name := range FunctionNames {
		t.Run(name, func(t *testing.T) {
			w := want[name]
			fnID := f.id(f.stack.Functions[name])
			p := f.props(t, fnID)
			equal(t, "Runtime", p["Runtime"], "provided.al2023")
			equal(t, "Architectures", p["Architectures"], anys("arm64"))
			equal(t, "Handler", p["Handler"], "bootstrap")
			equal(t, "MemorySize", p["MemorySize"], w.memory)
			equal(t, "Timeout", p["Timeout"], w.timeout)
			equal(t, "Environment", p["Environment"], map[string]any{"Variables": w.env})
			equal(t, "Role", p["Role"], getAtt(f.id(f.stack.Roles[name]), "Arn"))
			// JSON platform lines; Lambda never drops an application line (EMF lines have no level).
			equal(t, "LoggingConfig", p["LoggingConfig"], map[string]any{"LogGroup": ref(f.id(f.stack.LogGroups[name])),
				"LogFormat": "JSON", "ApplicationLogLevel": "TRACE", "SystemLogLevel": "INFO"})
			if rc, ok := p["ReservedConcurrentExecutions"]; ok {
				t.Errorf("reserved concurrency by default: %v", rc)
			}
			if tc, ok := p["TracingConfig"]; ok {
				t.Errorf("tracing is on by default: %v", tc)
			}

			// The code asset is the function's own bootstrap folder, staged into cdk.out.
			key, _ := p["Code"].(map[string]any)["S3Key"].(string)
			hash := strings.TrimSuffix(key, ".zip")
			if hash == "" || hash == key {
				t.Fatalf("Code.S3Key = %q, want <hash>.zip", key)
			}
			got, err := os.ReadFile(filepath.Join(f.outdir, "asset."+hash, "bootstrap"))
			if err != nil {
				t.Fatalf("staged asset: %v", err)
			}
			equal(t, "staged bootstrap", string(got), placeholder(name))
		})
	}
	// Log groups: one per function and the API access logs, 30 days, retained.
	groups := f.resources("AWS::Logs::LogGroup")
	equal(t, "log group count", len(groups), 4)
	for id, g := range groups {
		equal(t, id+" RetentionInDays", g["Properties"].(map[string]any)["RetentionInDays"], 30.0)
		equal(t, id+" DeletionPolicy", g["DeletionPolicy"], "Retain")
	}
}

// gatewayRoutes is the one route table, which the local gateway is built from (package
// internal/gateway of the root module, embedded there; this module cannot import it).
var gatewayRoutes = filepath.Join("..", "..", "internal", "gateway", "routes.txt")

// expectedRoutes maps each route key ("METHOD /path") of the route table to the function that
// must serve it. A malformed line fails the test.
func expectedRoutes(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(gatewayRoutes)
	if err != nil {
		t.Fatalf("the route table: %v", err)
	}
	routes := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s:%d: want METHOD /PATH FUNCTION, got %q", gatewayRoutes, i+1, line)
		}
		routes[f[0]+" "+f[1]] = f[2]
	}
	return routes
}

// Routes (what the stack deploys) and the local gateway's route table are the same routes to
// the same functions.
func TestRoutesMatchGateway(t *testing.T) {
	want := expectedRoutes(t)
	got := map[string]string{}
	for _, r := range Routes() {
		got[string(r.Method)+" "+r.Path] = r.Function
	}
	var diff []string
	for key, fn := range got {
		if want[key] != fn {
			diff = append(diff, fmt.Sprintf("+ %s %s (in Routes, not in %s)", key, fn, gatewayRoutes))
		}
	}
	for key, fn := range want {
		if got[key] != fn {
			diff = append(diff, fmt.Sprintf("- %s %s (in %s, not in Routes)", key, fn, gatewayRoutes))
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		t.Errorf("the stack's routes and the local gateway's drifted:\n%s", strings.Join(diff, "\n"))
	}
	equal(t, "route count", len(Routes()), len(want))
}

func TestAPI(t *testing.T) {
	expectedRoutes := expectedRoutes(t)
	f := defaultStack(t)
	apiID := f.id(f.stack.API)
	equal(t, "Api", f.props(t, apiID)["ProtocolType"], "HTTP")
	equal(t, "Api name", f.props(t, apiID)["Name"], "zae-limiter")
	check(t, "one API", func() { f.tmpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Api"), jsii.Number(1)) })

	// Every route: IAM authorization, and the expected function behind it.
	integrations := f.resources("AWS::ApiGatewayV2::Integration")
	fnByArn := map[string]string{}
	for _, name := range FunctionNames {
		fnByArn[f.id(f.stack.Functions[name])] = name
	}
	routes := f.resources("AWS::ApiGatewayV2::Route")
	seen := map[string]bool{}
	for id, r := range routes {
		p := r["Properties"].(map[string]any)
		key, _ := p["RouteKey"].(string)
		seen[key] = true
		if p["AuthorizationType"] != "AWS_IAM" {
			t.Errorf("route %s (%s): AuthorizationType %v, want AWS_IAM", key, id, p["AuthorizationType"])
		}
		equal(t, key+" ApiId", p["ApiId"], ref(apiID))
		target, _ := p["Target"].(map[string]any)["Fn::Join"].([]any)
		if len(target) != 2 {
			t.Errorf("route %s: Target %v", key, p["Target"])
			continue
		}
		parts := target[1].([]any)
		integID, _ := parts[1].(map[string]any)["Ref"].(string)
		integ, ok := integrations[integID]
		if !ok {
			t.Errorf("route %s: integration %s not found", key, integID)
			continue
		}
		ip := integ["Properties"].(map[string]any)
		equal(t, key+" IntegrationType", ip["IntegrationType"], "AWS_PROXY")
		equal(t, key+" PayloadFormatVersion", ip["PayloadFormatVersion"], "2.0")
		uri, _ := ip["IntegrationUri"].(map[string]any)["Fn::GetAtt"].([]any)
		if len(uri) != 2 || fnByArn[uri[0].(string)] != expectedRoutes[key] {
			t.Errorf("route %s: integration invokes %v, want the %s function", key, ip["IntegrationUri"], expectedRoutes[key])
		}
	}
	for key := range expectedRoutes {
		if !seen[key] {
			t.Errorf("route %s is missing", key)
		}
	}
	equal(t, "route count", len(routes), len(expectedRoutes))
	check(t, "no route without IAM", func() {
		f.tmpl.AllResourcesProperties(jsii.String("AWS::ApiGatewayV2::Route"), &map[string]any{"AuthorizationType": "AWS_IAM"})
	})

	// API Gateway may invoke acquire and admin (from this API only), never the aggregator.
	perms := f.resources("AWS::Lambda::Permission")
	invoked := map[string]bool{}
	for id, r := range perms {
		p := r["Properties"].(map[string]any)
		equal(t, id+" Principal", p["Principal"], "apigateway.amazonaws.com")
		equal(t, id+" Action", p["Action"], "lambda:InvokeFunction")
		fn, _ := p["FunctionName"].(map[string]any)["Fn::GetAtt"].([]any)
		if len(fn) == 2 {
			invoked[fnByArn[fn[0].(string)]] = true
		}
		src, _ := json.Marshal(p["SourceArn"])
		if !strings.Contains(string(src), `{"Ref":"`+apiID+`"}`) {
			t.Errorf("%s: SourceArn %s does not name the API", id, src)
		}
	}
	equal(t, "functions API Gateway may invoke", invoked, map[string]bool{FunctionAcquire: true, FunctionAdmin: true})

	// Stage: $default, auto-deployed, throttled, JSON access logs to the access log group.
	stage := f.props(t, f.id(f.stack.Stage))
	equal(t, "StageName", stage["StageName"], "$default")
	equal(t, "AutoDeploy", stage["AutoDeploy"], true)
	equal(t, "DefaultRouteSettings", stage["DefaultRouteSettings"], map[string]any{
		"ThrottlingRateLimit": 1000.0, "ThrottlingBurstLimit": 2000.0,
	})
	logs, _ := stage["AccessLogSettings"].(map[string]any)
	equal(t, "access log destination", logs["DestinationArn"], getAtt(f.id(f.stack.LogGroups["api"]), "Arn"))
	var format map[string]string
	if err := json.Unmarshal([]byte(logs["Format"].(string)), &format); err != nil {
		t.Fatalf("access log format is not JSON: %v", err)
	}
	equal(t, "access log fields", format, AccessLogFields)
	for _, field := range []string{"requestId", "status", "routeKey", "userArn", "integrationError"} {
		if format[field] == "" {
			t.Errorf("access log format lacks %s", field)
		}
	}
}

func TestAggregatorEventSource(t *testing.T) {
	f := defaultStack(t)
	maps := f.resources("AWS::Lambda::EventSourceMapping")
	equal(t, "event source mappings", len(maps), 1)
	tableID := f.id(f.stack.Table)
	dlqID := f.id(f.stack.DeadLetterQueue)
	for _, m := range maps {
		p := m["Properties"].(map[string]any)
		equal(t, "FunctionName", p["FunctionName"], ref(f.id(f.stack.Functions[FunctionAggregator])))
		equal(t, "EventSourceArn", p["EventSourceArn"], getAtt(tableID, "StreamArn"))
		equal(t, "StartingPosition", p["StartingPosition"], "TRIM_HORIZON")
		equal(t, "BatchSize", p["BatchSize"], 100.0)
		equal(t, "MaximumBatchingWindowInSeconds", p["MaximumBatchingWindowInSeconds"], 5.0)
		equal(t, "BisectBatchOnFunctionError", p["BisectBatchOnFunctionError"], true)
		equal(t, "MaximumRetryAttempts", p["MaximumRetryAttempts"], -1.0)
		equal(t, "MaximumRecordAgeInSeconds", p["MaximumRecordAgeInSeconds"], 64800.0)
		equal(t, "FunctionResponseTypes", p["FunctionResponseTypes"], anys("ReportBatchItemFailures"))
		equal(t, "DestinationConfig", p["DestinationConfig"], map[string]any{
			"OnFailure": map[string]any{"Destination": getAtt(dlqID, "Arn")},
		})
		filters, _ := p["FilterCriteria"].(map[string]any)["Filters"].([]any)
		if len(filters) != 1 {
			t.Fatalf("FilterCriteria = %v, want one filter", p["FilterCriteria"])
		}
		var pattern any
		if err := json.Unmarshal([]byte(filters[0].(map[string]any)["Pattern"].(string)), &pattern); err != nil {
			t.Fatalf("filter pattern: %v", err)
		}
		equal(t, "filter pattern", pattern, map[string]any{
			"eventName": anys("INSERT", "MODIFY"),
			"dynamodb": map[string]any{"Keys": map[string]any{"PK": map[string]any{
				"S": []any{map[string]any{"prefix": "B#"}},
			}}},
		})
	}
	check(t, "filter as serialized JSON", func() {
		f.tmpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), &map[string]any{
			"FilterCriteria": map[string]any{"Filters": []any{map[string]any{
				"Pattern": assertions.Match_SerializedJson(&map[string]any{
					"eventName": anys("INSERT", "MODIFY"),
					"dynamodb":  map[string]any{"Keys": map[string]any{"PK": map[string]any{"S": []any{map[string]any{"prefix": "B#"}}}}},
				}),
			}}},
		})
	})

	// The DLQ: SQS-managed encryption, 14 days, TLS enforced by its queue policy.
	q := f.props(t, dlqID)
	equal(t, "SqsManagedSseEnabled", q["SqsManagedSseEnabled"], true)
	equal(t, "MessageRetentionPeriod", q["MessageRetentionPeriod"], 1209600.0)
	var enforced bool
	for _, pol := range f.resources("AWS::SQS::QueuePolicy") {
		pp := pol["Properties"].(map[string]any)
		if !jsonEqual(pp["Queues"], []any{ref(dlqID)}) {
			continue
		}
		for _, s := range list(pp["PolicyDocument"].(map[string]any)["Statement"]) {
			s := s.(map[string]any)
			if s["Effect"] == "Deny" && jsonEqual(s["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}) {
				enforced = true
			}
		}
	}
	if !enforced {
		t.Error("the DLQ has no policy denying requests without TLS")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestCallerPolicies(t *testing.T) {
	f := defaultStack(t)
	apiID := f.id(f.stack.API)
	route := func(method, path string) any {
		return join("arn:", ref("AWS::Partition"), ":execute-api:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":", ref(apiID), "/$default/"+method+path)
	}
	stmt := func(sid, action string, resources ...any) any {
		var res any = resources
		if len(resources) == 1 {
			res = resources[0]
		}
		return map[string]any{"Sid": sid, "Effect": "Allow", "Action": action, "Resource": res}
	}
	for _, c := range []struct {
		policy constructs.IConstruct
		want   []any
	}{
		{f.stack.AcquireCallerPolicy, []any{
			stmt("CallAcquireRoutes", "execute-api:Invoke", route("POST", "/v1/acquire"), route("POST", "/v1/leases/*/*"),
				route("POST", "/v1/available"), route("POST", "/v1/time-until-available")),
			stmt("InvokeAcquireFunction", "lambda:InvokeFunction", getAtt(f.id(f.stack.Functions[FunctionAcquire]), "Arn")),
		}},
		{f.stack.AdminPolicy, []any{
			stmt("CallAdminRoutes", "execute-api:Invoke",
				route("*", "/v1/entities"), route("*", "/v1/entities/*"), route("*", "/v1/resources"),
				route("*", "/v1/resources/*"), route("*", "/v1/system"), route("*", "/v1/system/*")),
		}},
	} {
		id := f.id(c.policy)
		p := f.props(t, id)
		equal(t, id+" statements", p["PolicyDocument"].(map[string]any)["Statement"], c.want)
		for _, k := range []string{"Roles", "Users", "Groups"} {
			if v, ok := p[k]; ok {
				t.Errorf("%s is attached (%s: %v); callers attach it", id, k, v)
			}
		}
	}
	equal(t, "managed policies", len(f.resources("AWS::IAM::ManagedPolicy")), 2)
}

func TestOutputs(t *testing.T) {
	f := defaultStack(t)
	outputs, _ := f.doc["Outputs"].(map[string]any)
	value := func(name string) any {
		o, ok := outputs[name].(map[string]any)
		if !ok {
			t.Errorf("output %s is missing", name)
			return nil
		}
		return o["Value"]
	}
	fn := func(name string) any { return getAtt(f.id(f.stack.Functions[name]), "Arn") }
	tableID := f.id(f.stack.Table)
	apiID := f.id(f.stack.API)
	equal(t, "ApiId", value("ApiId"), ref(apiID))
	equal(t, "TableName", value("TableName"), ref(tableID))
	equal(t, "TableArn", value("TableArn"), getAtt(tableID, "Arn"))
	equal(t, "TableStreamArn", value("TableStreamArn"), getAtt(tableID, "StreamArn"))
	equal(t, "AcquireFunctionArn", value("AcquireFunctionArn"), fn(FunctionAcquire))
	equal(t, "AdminFunctionArn", value("AdminFunctionArn"), fn(FunctionAdmin))
	equal(t, "AggregatorFunctionArn", value("AggregatorFunctionArn"), fn(FunctionAggregator))
	equal(t, "AcquireCallerPolicyArn", value("AcquireCallerPolicyArn"), ref(f.id(f.stack.AcquireCallerPolicy)))
	equal(t, "AdminPolicyArn", value("AdminPolicyArn"), ref(f.id(f.stack.AdminPolicy)))
	equal(t, "AggregatorDLQUrl", value("AggregatorDLQUrl"), ref(f.id(f.stack.DeadLetterQueue)))
	equal(t, "ApiUrl", value("ApiUrl"), join("https://", ref(apiID), ".execute-api.",
		ref("AWS::Region"), ".", ref("AWS::URLSuffix"), "/"))
	equal(t, "DashboardUrl", value("DashboardUrl"), join("https://console.aws.amazon.com/cloudwatch/home?region=",
		ref("AWS::Region"), "#dashboards:name=", ref(f.id(f.stack.Dashboard))))
	equal(t, "output count", len(outputs), 12)
	check(t, "HasOutput", func() {
		f.tmpl.HasOutput(jsii.String("TableName"), &map[string]any{"Value": ref(tableID)})
	})
}

func TestCustomSettings(t *testing.T) {
	f := customStack(t)
	tableID := f.id(f.stack.Table)
	table := f.resource(t, tableID)
	tp := table["Properties"].(map[string]any)
	equal(t, "TableName", tp["TableName"], "limiter-custom")
	equal(t, "DeletionProtectionEnabled", tp["DeletionProtectionEnabled"], false)
	equal(t, "table DeletionPolicy", table["DeletionPolicy"], "Delete")
	equal(t, "API name", f.props(t, f.id(f.stack.API))["Name"], "limiter-custom-api")

	memory := map[string]float64{FunctionAcquire: 512, FunctionAdmin: 1024, FunctionAggregator: 2048}
	for _, name := range FunctionNames {
		p := f.props(t, f.id(f.stack.Functions[name]))
		equal(t, name+" MemorySize", p["MemorySize"], memory[name])
		equal(t, name+" TracingConfig", p["TracingConfig"], map[string]any{"Mode": "Active"})
		vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		equal(t, name+" LOG_LEVEL", vars["LOG_LEVEL"], "DEBUG")
	}
	vars := f.props(t, f.id(f.stack.Functions[FunctionAggregator]))["Environment"].(map[string]any)["Variables"].(map[string]any)
	equal(t, "SNAPSHOT_RETENTION_DAYS", vars["SNAPSHOT_RETENTION_DAYS"], "30")
	vars = f.props(t, f.id(f.stack.Functions[FunctionAdmin]))["Environment"].(map[string]any)["Variables"].(map[string]any)
	equal(t, "AUDIT_RETENTION_DAYS", vars["AUDIT_RETENTION_DAYS"], "0")
	for id, g := range f.resources("AWS::Logs::LogGroup") {
		equal(t, id+" RetentionInDays", g["Properties"].(map[string]any)["RetentionInDays"], 7.0)
		equal(t, id+" DeletionPolicy", g["DeletionPolicy"], "Delete")
	}
	equal(t, "DLQ DeletionPolicy", f.resource(t, f.id(f.stack.DeadLetterQueue))["DeletionPolicy"], "Delete")
	equal(t, "termination protection", *f.stack.TerminationProtection(), true)
	equal(t, "table tags", tp["Tags"], []any{
		map[string]any{"Key": "Environment", "Value": "production"},
		map[string]any{"Key": "Project", "Value": "zae-limiter"},
		map[string]any{"Key": "team", "Value": "limits"},
	})
	equal(t, "stage name", f.props(t, f.id(f.stack.Stage))["StageName"], "live")
	acq := f.props(t, f.id(f.stack.Functions[FunctionAcquire]))
	equal(t, "acquire reserved concurrency", acq["ReservedConcurrentExecutions"], 100.0)
	equal(t, "text logs", acq["LoggingConfig"], map[string]any{"LogGroup": ref(f.id(f.stack.LogGroups[FunctionAcquire]))})
	equal(t, "metrics namespace", acq["Environment"].(map[string]any)["Variables"].(map[string]any)["METRICS_NAMESPACE"], "Limits/Custom")
	if _, ok := f.props(t, f.id(f.stack.Functions[FunctionAdmin]))["ReservedConcurrentExecutions"]; ok {
		t.Error("the admin function has reserved concurrency")
	}
	// The caller policy names the live stage.
	stmts := f.props(t, f.id(f.stack.AcquireCallerPolicy))["PolicyDocument"].(map[string]any)["Statement"]
	if raw, _ := json.Marshal(stmts); !strings.Contains(string(raw), "/live/POST/v1/acquire") {
		t.Errorf("caller policy does not name the live stage: %s", raw)
	}
	if d := defaultStack(t); *d.stack.TerminationProtection() {
		t.Error("termination protection on for a dev stack")
	}
	equal(t, "throttling", f.props(t, f.id(f.stack.Stage))["DefaultRouteSettings"], map[string]any{
		"ThrottlingRateLimit": 50.0, "ThrottlingBurstLimit": 100.0,
	})
	// Tracing adds the X-Ray statements to each role's policy.
	for _, name := range FunctionNames {
		var xray bool
		for _, s := range roleStatements(t, f, name) {
			if strings.Join(s.actions, ",") == "xray:PutTelemetryRecords,xray:PutTraceSegments" {
				xray = true
			}
		}
		if !xray {
			t.Errorf("%s role: no X-Ray statement with tracing on", name)
		}
	}
}

// The access logs feed a 403 metric per API; the dashboard shows every alarm and graph.
func TestForbiddenMetricAndDashboard(t *testing.T) {
	f := defaultStack(t)
	filters := f.resources("AWS::Logs::MetricFilter")
	equal(t, "metric filters", len(filters), 1)
	for _, mf := range filters {
		p := mf["Properties"].(map[string]any)
		equal(t, "LogGroupName", p["LogGroupName"], ref(f.id(f.stack.LogGroups["api"])))
		equal(t, "FilterPattern", p["FilterPattern"], `{ $.status = "403" }`)
		equal(t, "MetricTransformations", p["MetricTransformations"], []any{map[string]any{
			"MetricNamespace": "ZaeLimiter", "MetricName": "ApiForbidden", "MetricValue": "1", "Unit": "Count",
			"Dimensions": []any{map[string]any{"Key": "ApiId", "Value": "$.apiId"}},
		}})
	}
	equal(t, "access log apiId", AccessLogFields["apiId"], "$context.apiId")

	dashboards := f.resources("AWS::CloudWatch::Dashboard")
	equal(t, "dashboards", len(dashboards), 1)
	for _, d := range dashboards {
		body, err := json.Marshal(d["Properties"].(map[string]any)["DashboardBody"])
		if err != nil {
			t.Fatal(err)
		}
		for _, title := range DashboardTitles() {
			if !strings.Contains(string(body), title) {
				t.Errorf("dashboard has no graph %q", title)
			}
		}
		for _, id := range AlarmIDs() {
			if !strings.Contains(string(body), `"`+f.id(f.stack.Alarms[id])+`"`) {
				t.Errorf("dashboard's alarm widget lacks %s", id)
			}
		}
	}
}

func TestCdkNagAwsSolutions(t *testing.T) {
	for name, f := range map[string]*fixture{"default": defaultStack(t), "custom": customStack(t)} {
		t.Run(name, func(t *testing.T) {
			a := assertions.Annotations_FromStack(f.stack.Stack)
			for _, find := range []struct {
				kind string
				msgs func() int
			}{
				{"error", func() int {
					return len(*a.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))))
				}},
				{"warning", func() int {
					return len(*a.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))))
				}},
			} {
				if n := find.msgs(); n != 0 {
					t.Errorf("%d unsuppressed AwsSolutions %ss", n, find.kind)
					for _, m := range *a.FindError(jsii.String("*"), assertions.Match_AnyValue()) {
						t.Logf("%s: %v", *m.Id, m.Entry.Data)
					}
				}
			}
			// Every suppression carries its reason.
			dlq := f.resource(t, f.id(f.stack.DeadLetterQueue))
			meta, _ := dlq["Metadata"].(map[string]any)["cdk_nag"].(map[string]any)
			rules := list(meta["rules_to_suppress"])
			if len(rules) != 1 || rules[0].(map[string]any)["id"] != "AwsSolutions-SQS3" ||
				len(rules[0].(map[string]any)["reason"].(string)) < 20 {
				t.Errorf("DLQ suppressions = %v, want AwsSolutions-SQS3 with a reason", rules)
			}
		})
	}
	// The pack really runs: an unencrypted queue without TLS enforcement is reported.
	t.Run("detects", func(t *testing.T) {
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(testRoot, "cdk.out.nag"))})
		st := awscdk.NewStack(app, jsii.String("Bad"), nil)
		awssqs.NewQueue(st, jsii.String("Plain"), &awssqs.QueueProps{Encryption: awssqs.QueueEncryption_UNENCRYPTED})
		CheckAwsSolutions(app)
		a := assertions.Annotations_FromStack(st)
		check(t, "SQS4 reported", func() {
			a.HasError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-SQS4.*")))
		})
	})
}
