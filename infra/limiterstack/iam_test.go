package limiterstack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// statement is one IAM policy statement of the template, normalized.
type statement struct {
	source    string // where it is: logical id of the policy/role/resource
	sid       string
	effect    string
	actions   []string // sorted
	resources []any
	condition any
	raw       map[string]any
}

// statementsOf returns every policy statement of doc: identity policies (AWS::IAM::Policy,
// AWS::IAM::ManagedPolicy, inline role policies) and resource policies (SQS, SNS).
func statementsOf(doc map[string]any) []statement {
	var out []statement
	addDoc := func(source string, pd any) {
		m, _ := pd.(map[string]any)
		for _, s := range list(m["Statement"]) {
			s := s.(map[string]any)
			st := statement{source: source, effect: fmt.Sprint(s["Effect"]), raw: s,
				actions: strs(s["Action"]), resources: list(s["Resource"]), condition: s["Condition"]}
			if sid, ok := s["Sid"].(string); ok {
				st.sid = sid
			}
			out = append(out, st)
		}
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"} {
		for id, r := range resourcesOf(doc, typ) {
			p, _ := r["Properties"].(map[string]any)
			addDoc(id, p["PolicyDocument"])
		}
	}
	for id, r := range resourcesOf(doc, "AWS::IAM::Role") {
		p, _ := r["Properties"].(map[string]any)
		for _, pol := range list(p["Policies"]) {
			addDoc(id, pol.(map[string]any)["PolicyDocument"])
		}
	}
	return out
}

// starResourceActions are the only actions allowed on resource "*": they support no
// resource-level permissions.
var starResourceActions = map[string]bool{
	"xray:PutTraceSegments":    true,
	"xray:PutTelemetryRecords": true,
}

// wildcardViolations returns why each Allow statement breaks least privilege: a wildcard action
// (dynamodb:*, *, s3:Get*), NotAction/NotResource, or any action other than the X-Ray ones on
// resource "*".
func wildcardViolations(stmts []statement) []string {
	var out []string
	for _, s := range stmts {
		if s.effect != "Allow" {
			continue
		}
		where := s.source
		if s.sid != "" {
			where += "/" + s.sid
		}
		if _, ok := s.raw["NotAction"]; ok {
			out = append(out, where+": NotAction")
		}
		if _, ok := s.raw["NotResource"]; ok {
			out = append(out, where+": NotResource")
		}
		for _, a := range s.actions {
			if strings.Contains(a, "*") {
				out = append(out, fmt.Sprintf("%s: wildcard action %q", where, a))
			}
		}
		for _, r := range s.resources {
			if r != "*" {
				continue
			}
			for _, a := range s.actions {
				if !starResourceActions[a] {
					out = append(out, fmt.Sprintf("%s: action %q on resource \"*\"", where, a))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestNoWildcardPermissions(t *testing.T) {
	for name, f := range map[string]*fixture{"default": defaultStack(t), "custom (tracing on)": customStack(t)} {
		t.Run(name, func(t *testing.T) {
			stmts := statementsOf(f.doc)
			// 3 roles x (logs + at least 2 table statements) + DLQ + invoke policy.
			if len(stmts) < 12 {
				t.Fatalf("only %d statements found; the scan is not seeing the policies", len(stmts))
			}
			for _, v := range wildcardViolations(stmts) {
				t.Error(v)
			}
		})
	}
}

// TestWildcardCheckCatchesViolations proves TestNoWildcardPermissions would fail on the
// statements it exists to reject.
func TestWildcardCheckCatchesViolations(t *testing.T) {
	var doc map[string]any
	bad := `{"Resources": {
	  "P": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
	    {"Sid": "AllDynamo", "Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["T", "Arn"]}},
	    {"Sid": "ReadAnywhere", "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
	    {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"},
	    {"Sid": "Prefix", "Effect": "Allow", "Action": "dynamodb:Get*", "Resource": "arn:aws:dynamodb:::table/T"},
	    {"Sid": "Send", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": ["arn:aws:sqs:::q", "*"]},
	    {"Sid": "Xray", "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"},
	    {"Sid": "DenyIsFine", "Effect": "Deny", "Action": "*", "Resource": "*"}
	  ]}}},
	  "R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
	    {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}
	  ]}}]}}
	}}`
	if err := json.Unmarshal([]byte(bad), &doc); err != nil {
		t.Fatal(err)
	}
	got := wildcardViolations(statementsOf(doc))
	want := []string{
		`P/AllDynamo: wildcard action "dynamodb:*"`,
		`P/Everything: action "*" on resource "*"`,
		`P/Everything: wildcard action "*"`,
		`P/Prefix: wildcard action "dynamodb:Get*"`,
		`P/ReadAnywhere: action "dynamodb:GetItem" on resource "*"`,
		`P/Send: action "sqs:SendMessage" on resource "*"`,
		`R: NotAction`,
	}
	equal(t, "violations", got, want)
}

// roleStatements returns the statements of the identity policies attached to a function's role.
func roleStatements(t *testing.T, f *fixture, fn string) []statement {
	t.Helper()
	roleID := f.id(f.stack.Roles[fn])
	var out []statement
	for id, r := range f.resources("AWS::IAM::Policy") {
		p := r["Properties"].(map[string]any)
		for _, role := range list(p["Roles"]) {
			if jsonEqual(role, ref(roleID)) {
				for _, s := range statementsOf(map[string]any{"Resources": map[string]any{id: r}}) {
					out = append(out, s)
				}
			}
		}
	}
	role := f.props(t, roleID)
	if v, ok := role["ManagedPolicyArns"]; ok {
		t.Errorf("%s role has managed policies %v; it must carry only its own statements", fn, v)
	}
	for _, pol := range list(role["Policies"]) {
		for _, s := range statementsOf(map[string]any{"Resources": map[string]any{roleID: map[string]any{
			"Type": "AWS::IAM::Policy", "Properties": pol}}}) {
			out = append(out, s)
		}
	}
	return out
}

func TestRoleStatements(t *testing.T) {
	f := defaultStack(t)
	tableID := f.id(f.stack.Table)
	table := getAtt(tableID, "Arn")
	stream := getAtt(tableID, "StreamArn")
	index := func(name string) any { return join(table, "/index/"+name) }
	leading := func(patterns ...string) any {
		return map[string]any{
			"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": anys(patterns...)},
			"Null":                    map[string]any{"dynamodb:LeadingKeys": "false"},
		}
	}
	type want struct {
		actions   []string
		resources []any
		condition any
	}
	logs := func(fn string) want {
		return want{[]string{"logs:CreateLogStream", "logs:PutLogEvents"}, []any{getAtt(f.id(f.stack.LogGroups[fn]), "Arn")}, nil}
	}
	dlq := getAtt(f.id(f.stack.DeadLetterQueue), "Arn")
	expected := map[string]map[string]want{
		FunctionAcquire: {
			"WriteOwnLogs":                  logs(FunctionAcquire),
			"ReadItems":                     {[]string{"dynamodb:BatchGetItem", "dynamodb:GetItem"}, []any{table}, nil},
			"WriteBucketAndLeasePartitions": {[]string{"dynamodb:PutItem", "dynamodb:UpdateItem"}, []any{table}, leading("B#*", "LEASE#*")},
		},
		FunctionAdmin: {
			"WriteOwnLogs":        logs(FunctionAdmin),
			"ReadTableAndIndexes": {[]string{"dynamodb:GetItem", "dynamodb:Query"}, []any{table, index("GSI1"), index("GSI2")}, nil},
			"WriteEntityAndLimitPartitions": {[]string{"dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
				[]any{table}, leading("E#*", "R#*", "SYSTEM", "AUDIT#*")},
			"DeleteBucketsOfDeletedEntities": {[]string{"dynamodb:BatchWriteItem"}, []any{table}, leading("B#*")},
		},
		FunctionAggregator: {
			"WriteOwnLogs":         logs(FunctionAggregator),
			"ReadStream":           {[]string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}, []any{stream}, nil},
			"WriteUsagePartitions": {[]string{"dynamodb:UpdateItem"}, []any{table}, leading("U#*")},
			// Added by the on-failure destination: send to the DLQ only.
			"": {[]string{"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"}, []any{dlq}, nil},
		},
	}
	for _, fn := range FunctionNames {
		t.Run(fn, func(t *testing.T) {
			got := map[string]statement{}
			for _, s := range roleStatements(t, f, fn) {
				if _, dup := got[s.sid]; dup {
					t.Errorf("two statements with Sid %q", s.sid)
				}
				got[s.sid] = s
				equal(t, s.sid+" Effect", s.effect, "Allow")
			}
			for sid, w := range expected[fn] {
				s, ok := got[sid]
				if !ok {
					t.Errorf("statement %q missing", sid)
					continue
				}
				equal(t, sid+" actions", s.actions, w.actions)
				equal(t, sid+" resources", s.resources, w.resources)
				equal(t, sid+" condition", s.condition, w.condition)
			}
			for sid := range got {
				if _, ok := expected[fn][sid]; !ok {
					t.Errorf("unexpected statement %q: %v", sid, got[sid].raw)
				}
			}
		})
	}
}

// writeActions are the DynamoDB actions that change items.
var writeActions = map[string]bool{
	"dynamodb:PutItem": true, "dynamodb:UpdateItem": true, "dynamodb:DeleteItem": true,
	"dynamodb:BatchWriteItem": true, "dynamodb:ConditionCheckItem": true,
	"dynamodb:PartiQLInsert": true, "dynamodb:PartiQLUpdate": true, "dynamodb:PartiQLDelete": true,
}

// stringLike reports whether s matches an IAM StringLike pattern (* and ? wildcards).
func stringLike(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// mayWrite evaluates the role's statements for a write of `action` to an item whose partition
// key is pk: some Allow statement must name the action and the table, and its LeadingKeys
// condition (if any) must accept pk.
func mayWrite(stmts []statement, tableArn any, action, pk string) bool {
	for _, s := range stmts {
		if s.effect != "Allow" {
			continue
		}
		named := false
		for _, a := range s.actions {
			if a == action {
				named = true
			}
		}
		onTable := false
		for _, r := range s.resources {
			if jsonEqual(r, tableArn) {
				onTable = true
			}
		}
		if !named || !onTable {
			continue
		}
		if s.condition == nil {
			return true
		}
		cond, _ := s.condition.(map[string]any)
		if len(cond) != 2 || !jsonEqual(cond["Null"], map[string]any{"dynamodb:LeadingKeys": "false"}) {
			continue // an unknown condition, or ForAllValues without its Null guard: not allowing
		}
		like, ok := cond["ForAllValues:StringLike"].(map[string]any)
		if !ok || len(like) != 1 {
			continue
		}
		for _, p := range strs(like["dynamodb:LeadingKeys"]) {
			if stringLike(p, pk) {
				return true
			}
		}
	}
	return false
}

// TestPartitionWriteAccess checks, key by key and action by action, which partitions each
// function may write: the property the key layout was designed for (docs/design.md).
func TestPartitionWriteAccess(t *testing.T) {
	f := defaultStack(t)
	table := getAtt(f.id(f.stack.Table), "Arn")
	keys := []string{"B#user-1", "LEASE#01HZX", "E#user-1", "R#gpt-4", "SYSTEM", "SYSTEMX", "U#user-1", "AGG#state", "P#parent", "BX", "LEASE",
		"AUDIT#E#user-1", "AUDIT#SYSTEM"}
	item := []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"}
	// allowed[fn][pk] lists the write actions fn may use on partition pk; every other pair is denied.
	allowed := map[string]map[string][]string{
		FunctionAcquire: {
			"B#user-1": {"dynamodb:PutItem", "dynamodb:UpdateItem"}, "LEASE#01HZX": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
		},
		FunctionAdmin: {
			"E#user-1": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
			"R#gpt-4":  {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
			"SYSTEM":   {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
			"B#user-1": {"dynamodb:BatchWriteItem"}, // deleting a deleted entity's buckets
			// Audit records of admin changes, written in the same transaction as each change.
			"AUDIT#E#user-1": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
			"AUDIT#SYSTEM":   {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
		},
		FunctionAggregator: {"U#user-1": {"dynamodb:UpdateItem"}},
	}
	for _, fn := range FunctionNames {
		stmts := roleStatements(t, f, fn)
		for _, pk := range keys {
			for _, action := range item {
				want := false
				for _, a := range allowed[fn][pk] {
					want = want || a == action
				}
				if got := mayWrite(stmts, table, action, pk); got != want {
					t.Errorf("%s %s on %q: allowed=%v, want %v", fn, action, pk, got, want)
				}
			}
		}
		// No write action reaches the table without going through the checks above.
		for _, s := range stmts {
			for _, a := range s.actions {
				if writeActions[a] && s.condition == nil {
					t.Errorf("%s: %s granted without a LeadingKeys condition (%s)", fn, a, s.sid)
				}
			}
		}
	}
	// And the evaluator itself: an unconditioned write allows every partition, and a
	// ForAllValues condition without its Null guard allows nothing.
	open := []statement{{effect: "Allow", actions: []string{"dynamodb:PutItem"}, resources: []any{table}}}
	if !mayWrite(open, table, "dynamodb:PutItem", "E#user-1") {
		t.Error("mayWrite does not see an unconditioned grant")
	}
	unguarded := []statement{{effect: "Allow", actions: []string{"dynamodb:PutItem"}, resources: []any{table},
		condition: map[string]any{"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": []any{"E#*"}}}}}
	if mayWrite(unguarded, table, "dynamodb:PutItem", "E#user-1") {
		t.Error("mayWrite accepts a ForAllValues condition without a Null guard")
	}
}

// TestEveryForAllValuesHasANullGuard: ForAllValues is true for a request without the key, so
// every such condition in the template comes with Null "false" on the same key.
func TestEveryForAllValuesHasANullGuard(t *testing.T) {
	for name, f := range map[string]*fixture{"default": defaultStack(t), "custom": customStack(t)} {
		found := 0
		for _, s := range statementsOf(f.doc) {
			cond, _ := s.condition.(map[string]any)
			for op, kv := range cond {
				if !strings.HasPrefix(op, "ForAllValues:") {
					continue
				}
				for key := range kv.(map[string]any) {
					found++
					null, _ := cond["Null"].(map[string]any)
					if null[key] != "false" {
						t.Errorf("%s: %s/%s: %s on %s without Null %s=false", name, s.source, s.sid, op, key, key)
					}
				}
			}
		}
		if found < 4 {
			t.Errorf("%s: only %d ForAllValues conditions found", name, found)
		}
	}
}
