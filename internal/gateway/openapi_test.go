package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/gateway"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// stack serves both functions on a fresh table on a free port.
func stack(t *testing.T) string {
	t.Helper()
	client := ddbtest.Client(t)
	table := ddbtest.NewTable(t, client).Name()
	srv, err := gateway.Listen("127.0.0.1:0", gateway.NewStack(gateway.Config{DynamoDB: client, Table: table}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv.URL
}

// spec is the parts of docs/openapi.yaml the test reads.
type spec struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Responses map[string]struct {
			Content map[string]struct {
				Schema map[string]any `yaml:"schema"`
			} `yaml:"content"`
		} `yaml:"responses"`
	} `yaml:"components"`
}

// operation is one documented method of one path.
type specOperation struct {
	OperationID string `yaml:"operationId"`
	Responses   map[string]struct {
		Ref     string `yaml:"$ref"`
		Content map[string]struct {
			Schema map[string]any `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"responses"`
}

type operation struct {
	method, path, id string
	// responses maps each documented status to the schema $ref of its JSON body ("" for none).
	responses map[int]string
}

func loadSpec(t *testing.T) ([]operation, *jsonschema.Compiler) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml is not YAML: %v", err)
	}
	var s spec
	if err := yaml.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	// The whole document is the schema resource, so $refs resolve as in OpenAPI 3.1.
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("openapi.json", bytes.NewReader(js)); err != nil {
		t.Fatal(err)
	}
	var ops []operation
	for path, methods := range s.Paths {
		for method, node := range methods {
			if method == "parameters" {
				continue
			}
			var op specOperation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			o := operation{method: strings.ToUpper(method), path: path, id: op.OperationID, responses: map[int]string{}}
			for code, r := range op.Responses {
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s %s: response %q", method, path, code)
				}
				content := r.Content
				if r.Ref != "" {
					content = s.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")].Content
				}
				if sc, ok := content["application/json"]; ok {
					ref, _ := sc.Schema["$ref"].(string)
					if ref == "" {
						t.Fatalf("%s %s %d: inline response schema; use a component", method, path, status)
					}
					o.responses[status] = ref
				} else {
					o.responses[status] = "" // documented without a JSON body (a page, a file, 204)
				}
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops, c
}

// servedBy maps each route the functions serve ("METHOD /pattern") to the function serving it.
func servedBy() map[string]string {
	quiet := slog.New(slog.DiscardHandler)
	served := map[string]string{}
	for fn, rt := range map[string]*httpapi.Router{
		acquireapi.Name: acquireapi.New(nil, quiet),
		adminapi.Name:   adminapi.New(nil, quiet, append(append(adminapi.UsageRoutes(nil, nil), adminapi.AuditRoutes(nil)...), adminapi.DashboardRoutes()...)...),
	} {
		for _, r := range rt.Routes() {
			served[r.Method+" "+r.Pattern] = fn
		}
	}
	return served
}

// The route table (routes.txt) and docs/openapi.yaml agree: every documented operation has a
// route, to the function that serves it, and every route serves a documented operation (or is
// the collection path of a {proxy+} route that does).
func TestRoutesMatchOpenAPI(t *testing.T) {
	ops, _ := loadSpec(t)
	served := servedBy()
	routes := gateway.Routes()
	used := make([]bool, len(routes))
	vars := regexp.MustCompile(`\{[^/]+\}`)
	for _, o := range ops {
		path := vars.ReplaceAllString(o.path, "x")
		i := slices.IndexFunc(routes, func(r gateway.Route) bool { return r.Matches(o.method, path) })
		if i < 0 {
			t.Errorf("docs/openapi.yaml documents %s %s, which no route of routes.txt serves", o.method, o.path)
			continue
		}
		used[i] = true
		if want := served[o.method+" "+o.path]; routes[i].Function != want {
			t.Errorf("%s %s: routes.txt sends it to %q (%s %s), but %q serves it", o.method, o.path, routes[i].Function, routes[i].Method, routes[i].Pattern, want)
		}
	}
	// A collection's own path (ANY /v1/entities) is routed with its {proxy+} so that the admin
	// function, not API Gateway, answers it (its JSON 404/405): it serves no operation itself.
	proxyUsed := map[string]bool{}
	for i, r := range routes {
		if used[i] {
			proxyUsed[strings.TrimSuffix(r.Pattern, "/{proxy+}")] = strings.HasSuffix(r.Pattern, "/{proxy+}")
		}
	}
	for i, r := range routes {
		if !used[i] && !proxyUsed[r.Pattern] {
			t.Errorf("routes.txt: %s %s (%s) serves no operation of docs/openapi.yaml", r.Method, r.Pattern, r.Function)
		}
	}
}

// Every served route is documented, every documented route is served by a function and routed
// by the gateway, and a walk through every documented operation gets documented statuses with
// bodies valid against the documented schemas.
func TestOpenAPI(t *testing.T) {
	ops, compiler := loadSpec(t)
	documented := map[string]operation{}
	for _, o := range ops {
		documented[o.method+" "+o.path] = o
	}
	served := servedBy()
	for key := range served {
		if _, ok := documented[key]; !ok {
			t.Errorf("served but not documented: %s", key)
		}
	}
	for key := range documented {
		if served[key] == "" {
			t.Errorf("documented but not served: %s", key)
		}
	}

	base := stack(t)
	lease := ""
	// steps walk every operation: path values, body, and the status expected.
	type step struct {
		op     string
		params map[string]string
		body   string
		status int
		query  string
	}
	// rpm refills per day here: the server runs on the real clock, and a per-minute refill
	// (one token per 600 ms) made step 2's 429 depend on how loaded the machine was.
	acquire := `{"entity_id":"key-doc","resource":"gpt-4","consume":{"rpm":1,"tpm":500},"limits":[{"name":"rpm","rate":100,"period":"day"},{"name":"tpm","capacity":10000,"refill_amount":10000,"refill_period_seconds":60}]}`
	limits := `{"limits":[{"name":"rpm","rate":100,"period":"minute"},{"name":"tpm","rate":10000,"period":"minute","burst":20000}]}`
	ent := map[string]string{"entity_id": "key-doc"}
	entRes := map[string]string{"entity_id": "key-doc", "resource": "gpt-4"}
	res := map[string]string{"resource": "gpt-4"}
	steps := []step{
		{"acquire", nil, acquire, 200, ""},
		{"acquire", nil, strings.Replace(acquire, `"rpm":1,`, `"rpm":101,`, 1), 400, ""},
		{"acquire", nil, strings.Replace(acquire, `"rpm":1,`, `"rpm":100,`, 1), 429, ""},
		{"acquire", nil, strings.Replace(acquire, `"consume"`, `"commit":true,"consume"`, 1), 200, ""},
		{"adjustLease", nil, `{"adjust":{"tpm":250}}`, 200, ""},
		{"commitLease", nil, ``, 200, ""},
		{"rollbackLease", nil, `{}`, 409, ""},
		{"commitLease", map[string]string{"lease_id": "0123456789abcdef0123456789abcdef"}, ``, 404, ""},
		{"available", nil, `{"entity_id":"key-doc","resource":"gpt-4","limits":[{"name":"rpm","rate":100,"period":"minute"}]}`, 200, ""},
		{"timeUntilAvailable", nil, `{"entity_id":"key-doc","resource":"gpt-4","limits":[{"name":"rpm","rate":100,"period":"minute"}],"needed":{"rpm":2}}`, 200, ""},
		{"timeUntilAvailable", nil, `{"entity_id":"key-doc","resource":"gpt-4","needed":{"rpm":2}}`, 400, ""},
		{"putEntityLimits", entRes, limits, 404, ""},
		{"putEntity", ent, `{"name":"doc","metadata":{"k":"v"}}`, 201, ""},
		{"putEntity", ent, `{"name":"doc 2"}`, 200, ""},
		{"putEntity", map[string]string{"entity_id": "child-doc"}, `{"parent_id":"key-doc","cascade":true}`, 201, ""},
		{"putEntity", map[string]string{"entity_id": "child-doc"}, `{"parent_id":"other"}`, 409, ""},
		{"getEntity", ent, ``, 200, ""},
		{"listChildren", ent, ``, 200, ""},
		{"putEntityLimits", entRes, limits, 201, ""},
		{"putEntityLimits", map[string]string{"entity_id": "key-doc", "resource": "_default_"}, limits, 201, ""},
		{"getEntityLimits", entRes, ``, 200, ""},
		{"deleteEntityLimits", entRes, ``, 204, ""},
		{"getEntityLimits", entRes, ``, 404, ""},
		{"putResourceLimits", res, limits, 201, ""},
		{"getResourceLimits", res, ``, 200, ""},
		{"deleteResourceLimits", res, ``, 204, ""},
		{"putSystemLimits", nil, `{"limits":[{"name":"rpm","rate":10,"period":"second"}]}`, 201, ""},
		{"putSystemLimits", nil, `{"limits":[]}`, 400, ""},
		{"getSystemLimits", nil, ``, 200, ""},
		{"deleteSystemLimits", nil, ``, 204, ""},
		{"deleteEntity", ent, ``, 409, ""},
		{"deleteEntity", map[string]string{"entity_id": "child-doc"}, ``, 204, ""},
		{"deleteEntity", ent, ``, 204, ""},
		{"getEntity", ent, ``, 404, ""},
		{"entityUsage", ent, ``, 200, ""},
		{"entityUsage", ent, ``, 200, "?resource=gpt-4&window=daily&from=2026-11-01T00:00:00Z&to=2026-11-30T00:00:00Z"},
		{"entityUsage", ent, ``, 400, "?window=weekly"},
		{"entityUsage", ent, ``, 400, "?colour=red"},
		{"resourceUsage", res, ``, 200, "?window=daily&limit=10"},
		{"resourceUsage", res, ``, 400, "?from=yesterday"},
		{"resourceUsage", res, ``, 400, "?next_token=garbage"},
		{"entityAudit", ent, ``, 200, "?limit=3"},
		{"entityAudit", ent, ``, 400, "?next_token=garbage"},
		{"resourceAudit", res, ``, 200, ""},
		{"systemAudit", nil, ``, 200, ""},
		{"systemAudit", nil, ``, 400, "?limit=0"},
		{"dashboard", nil, ``, 200, ""},
		{"dashboardAsset", map[string]string{"file": "app.js"}, ``, 200, ""},
		{"dashboardAsset", map[string]string{"file": "style.css"}, ``, 200, ""},
		{"dashboardAsset", map[string]string{"file": "index.html"}, ``, 404, ""},
		{"dashboardAsset", map[string]string{"file": "secret.txt"}, ``, 404, ""},
	}
	byID := map[string]operation{}
	for _, o := range ops {
		byID[o.id] = o
	}
	walked := map[string]bool{}
	for i, s := range steps {
		o, ok := byID[s.op]
		if !ok {
			t.Fatalf("step %d: no operation %s", i, s.op)
		}
		walked[s.op] = true
		path := o.path
		params := map[string]string{"lease_id": lease}
		for k, v := range s.params {
			params[k] = v
		}
		for k, v := range params {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		req, _ := http.NewRequest(o.method, base+path+s.query, strings.NewReader(s.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		where := fmt.Sprintf("step %d %s %s %s", i, s.op, o.method, path)
		if resp.StatusCode != s.status {
			t.Errorf("%s: status %d, want %d: %s", where, resp.StatusCode, s.status, body)
			continue
		}
		ref, documentedStatus := o.responses[resp.StatusCode]
		if _, hasAny := o.responses[resp.StatusCode]; !hasAny && !slices.Contains([]int{204}, resp.StatusCode) {
			t.Errorf("%s: status %d is not documented", where, resp.StatusCode)
		}
		if documentedStatus && ref != "" {
			sch, err := compiler.Compile("openapi.json" + ref)
			if err != nil {
				t.Fatalf("%s: schema %s: %v", where, ref, err)
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Errorf("%s: body is not JSON: %s", where, body)
			} else if err := sch.Validate(v); err != nil {
				t.Errorf("%s: body %s does not match %s: %v", where, body, ref, err)
			}
		}
		if s.op == "acquire" && resp.StatusCode == 200 && lease == "" {
			var a httpapi.AcquireResponse
			_ = json.Unmarshal(body, &a)
			lease = a.LeaseID
		}
	}
	for _, o := range ops {
		if !walked[o.id] {
			t.Errorf("the walk misses %s (%s %s)", o.id, o.method, o.path)
		}
	}
	// Every documented path is routed by the gateway to a function: a method the function does
	// not serve is the function's 405, never the gateway's 404.
	for _, o := range ops {
		req, _ := http.NewRequest(http.MethodPatch, base+strings.NewReplacer("{entity_id}", "x", "{resource}", "r", "{lease_id}", "l", "{file}", "app.js").Replace(o.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 404 && strings.Contains(string(body), `"message":"Not Found"`) && !strings.HasPrefix(o.path, "/v1/leases") && o.method != http.MethodPost {
			t.Errorf("PATCH %s: the gateway has no route: %s", o.path, body)
		}
	}
}
