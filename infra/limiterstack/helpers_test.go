package limiterstack

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// testRoot holds the placeholder assets and the cloud assemblies of this test run.
var testRoot string

// placeholder returns the content of a function's placeholder bootstrap. Each differs, so each
// function gets its own asset hash and the tests can tell them apart.
func placeholder(fn string) string {
	return "#!/bin/sh\n# placeholder bootstrap of the " + fn + " function (tests)\nexit 1\n"
}

// assetRoot returns the folder of placeholder bootstraps shared by the tests.
func assetRoot() string { return filepath.Join(testRoot, "bin") }

func TestMain(m *testing.M) {
	// Silence jsii's Node end-of-life banner when go test is run directly.
	if os.Getenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION") == "" {
		os.Setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
	}
	code := func() int {
		var err error
		testRoot, err = os.MkdirTemp("", "zae-limiter-infra-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer os.RemoveAll(testRoot)
		for _, fn := range FunctionNames {
			dir := filepath.Join(assetRoot(), fn)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte(placeholder(fn)), 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		// jsii.Close stops the Node kernel and removes its temp dir; it must run before the
		// process exits.
		defer jsii.Close()
		return m.Run()
	}()
	os.Exit(code)
}

// fixture is one synthesized stack, shared by the tests that read it.
type fixture struct {
	stack  *LimiterStack
	tmpl   assertions.Template
	doc    map[string]any // the template as JSON
	outdir string
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// synth builds (once per name) a stack with DefaultProps, the placeholder assets, mutate applied
// and cdk-nag's AwsSolutions checks on, and synthesizes it.
func synth(t *testing.T, name string, mutate func(*Props)) *fixture {
	t.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[name]; ok {
		return f
	}
	outdir := filepath.Join(testRoot, "cdk.out."+name)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	p := DefaultProps()
	p.AssetRoot = assetRoot()
	if mutate != nil {
		mutate(&p)
	}
	st, err := New(app, "ZaeLimiterTest", p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	CheckAwsSolutions(app)
	tmpl := assertions.Template_FromStack(st.Stack, nil)
	f := &fixture{stack: st, tmpl: tmpl, doc: *tmpl.ToJSON(), outdir: outdir}
	fixtures[name] = f
	return f
}

// testAlarmTopicArn is the existing topic the custom fixture wires to its alarms.
const testAlarmTopicArn = "arn:aws:sns:us-east-1:123456789012:limiter-alarms"

func defaultStack(t *testing.T) *fixture { return synth(t, "default", nil) }

// customStack changes every setting from its default.
func customStack(t *testing.T) *fixture {
	return synth(t, "custom", func(p *Props) {
		p.TableName = "limiter-custom"
		p.APIName = "limiter-custom-api"
		p.DeletionProtection = false
		p.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
		p.LogLevel = "DEBUG"
		p.LogRetentionDays = 7
		p.SnapshotRetentionDays = 30
		p.AuditRetentionDays = 0
		p.AcquireMemoryMB, p.AdminMemoryMB, p.AggregatorMemoryMB = 512, 1024, 2048
		p.Tracing = true
		p.ThrottleRateLimit, p.ThrottleBurstLimit = 50, 100
		p.AlarmTopicArn = testAlarmTopicArn
		p.StageName = "live"
		p.Environment = "production"
		p.TerminationProtection = true
		p.Tags = map[string]string{"team": "limits"}
		p.LogFormat = "Text"
		p.MetricsNamespace = "Limits/Custom"
		p.AcquireReservedConcurrency = 100
		p.APILatencyAlarm = 500 * time.Millisecond
	})
}

func noAlarmsStack(t *testing.T) *fixture {
	return synth(t, "noalarms", func(p *Props) { p.Alarms = false })
}

// check runs an assertions call, turning its panic (a failed match) into a test error.
func check(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	fn()
}

// id returns the logical id of c's CloudFormation resource.
func (f *fixture) id(c constructs.IConstruct) string {
	return *f.stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

// resources returns the template's resources of type typ by logical id.
func (f *fixture) resources(typ string) map[string]map[string]any {
	return resourcesOf(f.doc, typ)
}

func resourcesOf(doc map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := doc["Resources"].(map[string]any)
	for id, r := range res {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// resource returns the resource with logical id, failing the test when it is missing.
func (f *fixture) resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r, ok := f.doc["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("resource %s not in template", id)
	}
	return r
}

// props returns the Properties of the resource with logical id.
func (f *fixture) props(t *testing.T, id string) map[string]any {
	t.Helper()
	p, _ := f.resource(t, id)["Properties"].(map[string]any)
	return p
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

// join is the Fn::Join CDK writes for a token concatenated with a suffix.
func join(parts ...any) map[string]any {
	return map[string]any{"Fn::Join": []any{"", parts}}
}

// equal reports a mismatch between got and want (template JSON values) as a test error.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

// strs turns a template value (string or list of strings) into a sorted []string.
func strs(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else {
				out = append(out, fmt.Sprint(e))
			}
		}
	}
	sort.Strings(out)
	return out
}

// list turns a template value that may be one element or a list into a list.
func list(v any) []any {
	if v == nil {
		return nil
	}
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func sorted(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

func anys(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
