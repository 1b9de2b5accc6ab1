package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/stacktest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// result is one run of zl.
type result struct {
	out, err string
	code     int
}

// zlAt runs zl with args against the stack at url (ZL_ENDPOINT) with environment vars.
func zlAt(t *testing.T, url string, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb stacktest.Buffer
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if k == envEndpoint {
			return url
		}
		return ""
	}
	code := run(context.Background(), args, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv})
	return result{out.String(), errb.String(), code}
}

func expectCode(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.err)
	}
	for _, w := range want {
		if !strings.Contains(r.out+r.err, w) {
			t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", w, r.out, r.err)
		}
	}
}

func decodeOut(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		t.Fatalf("--output json is not JSON: %v\n%s", err, r.out)
	}
}

func TestEntitiesLimitsAuditAndExitCodes(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{})
	zl := func(args ...string) result { t.Helper(); return zlAt(t, st.URL, nil, args...) }

	expectCode(t, zl("entity", "create", "proj-1", "--name", "Production", "--meta", "tier=gold"), exitOK, "proj-1", "Production", "tier=gold")
	r := zl("entity", "create", "key-1", "--parent", "proj-1", "--cascade", "--output", "json")
	expectCode(t, r, exitOK)
	var ent entityJSON
	decodeOut(t, r, &ent)
	if ent.ID != "key-1" || ent.ParentID != "proj-1" || !ent.Cascade || ent.Created == nil || !*ent.Created {
		t.Fatalf("created %+v", ent)
	}
	r = zl("entity", "update", "key-1", "--parent", "proj-1", "--cascade", "--name", "Key one", "--output", "json")
	decodeOut(t, r, &ent)
	if ent.Name != "Key one" || *ent.Created {
		t.Fatalf("updated %+v", ent)
	}
	expectCode(t, zl("entity", "get", "key-1"), exitOK, "Key one", "proj-1")
	expectCode(t, zl("entity", "children", "proj-1"), exitOK, "key-1")
	expectCode(t, zl("entity", "get", "nobody"), exitNotFound, "entity_not_found")
	expectCode(t, zl("entity", "delete", "proj-1"), exitError, "has_children")
	expectCode(t, zl("entity", "get", "bad#id"), exitBadInput, "invalid")
	expectCode(t, zl("entity", "get"), exitBadInput, "exactly one")
	expectCode(t, zl("entity", "get", "a", "--bogus"), exitBadInput, "flag provided but not defined")

	// Limits at the four scopes, from flags and from a file.
	expectCode(t, zl("limits", "set", "--entity", "key-1", "--resource", "gpt-4", "--limit", "rpm=100/minute", "--limit", "tpm=10000/minute,burst=15000"), exitOK, "tpm", "15000")
	expectCode(t, zl("limits", "set", "--entity", "key-1", "--limit", "rpd=1000/day"), exitOK, "entity:key-1")
	file := filepath.Join(t.TempDir(), "limits.yaml")
	if err := os.WriteFile(file, []byte("limits:\n  - {name: rpm, rate: 50, period: minute}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expectCode(t, zl("limits", "set", "--resource", "gpt-4", "--file", file), exitOK, "resource:gpt-4")
	expectCode(t, zl("limits", "set", "--system", "--limit", "rps=10/second"), exitOK, "system")
	r = zl("limits", "get", "--entity", "key-1", "--resource", "gpt-4", "--output", "json")
	expectCode(t, r, exitOK, `"capacity": 15000`)
	expectCode(t, zl("limits", "get", "--resource", "gpt-4"), exitOK, "rpm", "50")
	expectCode(t, zl("limits", "delete", "--system"), exitOK, "deleted system")
	expectCode(t, zl("limits", "get", "--system"), exitNotFound, "limits_not_found")
	expectCode(t, zl("limits", "set", "--system", "--limit", "rpm"), exitBadInput, "NAME=RATE/PERIOD")
	expectCode(t, zl("limits", "set", "--system", "--limit", "rpm=1/fortnight"), exitBadInput, "period")
	expectCode(t, zl("limits", "set", "--system", "--entity", "x", "--limit", "rpm=1/s"), exitBadInput, "--system cannot")
	expectCode(t, zl("limits", "set", "--entity", "nobody", "--limit", "rpm=1/s"), exitNotFound, "entity_not_found")
	// The API's own refusal of bad input (an id the server refuses) is exit 2 too.
	expectCode(t, zl("limits", "set", "--resource", "gpt#4", "--limit", "rpm=1/s"), exitBadInput, "invalid")

	// Trying limits: available, then acquire until refused.
	expectCode(t, zl("available", "--entity", "key-1", "--resource", "gpt-4", "--stored"), exitOK, "rpm", "100")
	expectCode(t, zl("acquire", "--entity", "key-1", "--resource", "gpt-4", "--stored", "--consume", "rpm=45", "--consume", "tpm=1"), exitOK, "key-1")
	// Ten a day, all taken: the next is refused however slow this machine is.
	expectCode(t, zl("acquire", "--entity", "key-1", "--resource", "claude", "--limit", "rpd=10/day", "--consume", "rpd=10"), exitOK)
	r = zl("acquire", "--entity", "key-1", "--resource", "claude", "--limit", "rpd=10/day", "--output", "json")
	expectCode(t, r, exitRefused)
	var refused struct {
		Granted  bool                 `json:"granted"`
		Statuses []limiter.StatusJSON `json:"statuses"`
		RetryMs  int64                `json:"retry_after_ms"`
	}
	decodeOut(t, r, &refused)
	if refused.Granted || refused.RetryMs <= 0 || len(refused.Statuses) == 0 {
		t.Fatalf("refusal: %s", r.out)
	}
	expectCode(t, zl("acquire", "--entity", "key-1", "--resource", "gpt-4"), exitBadInput, "--limit")

	// The audit trail of key-1, with the local stand-in principal.
	r = zl("audit", "--entity", "key-1", "--output", "json", "--limit", "2", "--all")
	expectCode(t, r, exitOK)
	var audit struct {
		Records []limiter.AuditRecord `json:"records"`
	}
	decodeOut(t, r, &audit)
	var acts []string
	for _, rec := range audit.Records {
		acts = append(acts, rec.Action)
		if rec.Principal != "arn:aws:iam::000000000000:user/local" {
			t.Fatalf("principal %q", rec.Principal)
		}
	}
	if got := strings.Join(acts, ","); got != "set_limits,set_limits,update_entity,create_entity" {
		t.Fatalf("audit of key-1: %s", got)
	}
	expectCode(t, zl("audit", "--system"), exitOK, "delete_limits", "set_limits", "user/local")
	expectCode(t, zl("audit"), exitBadInput, "one of")

	// Deleting, then the parent.
	expectCode(t, zl("entity", "delete", "key-1"), exitOK, "deleted key-1")
	expectCode(t, zl("entity", "delete", "proj-1"), exitOK)
	expectCode(t, zl("audit", "--entity", "key-1", "--limit", "1"), exitOK, "delete_entity", "(more: --all)")

	// Nobody answering: unavailable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	expectCode(t, zlAt(t, dead, nil, "entity", "get", "x"), exitUnavailable)
	expectCode(t, zlAt(t, dead, nil, "status"), exitUnavailable, "api answers", "no")
	expectCode(t, zlAt(t, "", nil, "entity", "get", "x"), exitBadInput, "no endpoint")
}

func TestPlanAndApply(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{})
	zl := func(args ...string) result { t.Helper(); return zlAt(t, st.URL, nil, args...) }
	expectCode(t, zl("entity", "create", "key-1"), exitOK)
	expectCode(t, zl("limits", "set", "--resource", "old", "--limit", "rpm=1/minute"), exitOK)
	expectCode(t, zl("limits", "set", "--resource", "gpt-4", "--limit", "tpm=1/minute"), exitOK)
	dir := t.TempDir()
	file := filepath.Join(dir, "limits.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`
system:
  - {name: rpm, rate: 1000, period: minute}
resources:
  gpt-4:
    - {name: tpm, rate: 100000, period: minute}
  old: []
entities:
  key-1:
    _default_: [{name: rpm, rate: 60, period: minute}]
    gpt-4: [{name: tpm, capacity: 10000, refill_amount: 5000, refill_period_seconds: 60}]
`)
	r := zl("limits", "plan", file, "--detailed-exitcode")
	expectCode(t, r, exitChanges, "entity:key-1", "create", "update", "delete", "5 of 5 scopes to apply")
	r = zl("limits", "plan", file, "--output", "json")
	expectCode(t, r, exitOK)
	var p struct {
		Changes []struct{ Scope, Action string } `json:"changes"`
		Pending int                              `json:"pending"`
	}
	decodeOut(t, r, &p)
	got := map[string]string{}
	for _, c := range p.Changes {
		got[c.Scope] = c.Action
	}
	want := map[string]string{"system": "create", "resource:gpt-4": "update", "resource:old": "delete",
		"entity:key-1": "create", "entity:key-1/resource:gpt-4": "create"}
	if fmt.Sprint(got) != fmt.Sprint(want) || p.Pending != 5 {
		t.Fatalf("plan %v (%d pending), want %v", got, p.Pending, want)
	}
	expectCode(t, zl("limits", "apply", file), exitOK, "5 of 5 scopes applied")
	before := len(auditOf(t, st, limiter.EntityDefault("key-1"))) + len(auditOf(t, st, limiter.SystemDefault()))
	// Idempotent: nothing left to do, nothing written, nothing recorded.
	expectCode(t, zl("limits", "plan", file, "--detailed-exitcode"), exitOK, "0 of 5 scopes to apply")
	expectCode(t, zl("limits", "apply", file), exitOK, "0 of 5 scopes applied")
	if after := len(auditOf(t, st, limiter.EntityDefault("key-1"))) + len(auditOf(t, st, limiter.SystemDefault())); after != before {
		t.Fatalf("a second apply made %d audit records", after-before)
	}
	ls, err := st.Admin.GetLimits(context.Background(), limiter.EntityResource("key-1", "gpt-4"))
	if err != nil || ls[0].Capacity != 10000 || ls[0].RefillAmount != 5000 {
		t.Fatalf("stored %+v %v", ls, err)
	}
	if _, err := st.Admin.GetLimits(context.Background(), limiter.ResourceDefault("old")); err == nil {
		t.Fatal("resource:old was not deleted")
	}
	write("entities:\n  nobody:\n    gpt-4: [{name: rpm, rate: 1, period: minute}]\n")
	expectCode(t, zl("limits", "apply", file), exitNotFound, "entity_not_found")
	write("system: [{name: rpm, rate: 1, period: fortnight}]\n")
	expectCode(t, zl("limits", "plan", file), exitBadInput, "period")
	write("sistem: []\n")
	expectCode(t, zl("limits", "plan", file), exitBadInput, "unknown field")
	expectCode(t, zl("limits", "plan", filepath.Join(dir, "missing.yaml")), exitBadInput, "no such file")
}

func auditOf(t *testing.T, st *stacktest.Stack, sc limiter.Scope) []limiter.AuditRecord {
	t.Helper()
	p, err := st.Admin.AuditLog(context.Background(), sc, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Records
}

// Usage from real acquires through the aggregator, as a table and a plot.
func TestUsagePlot(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{Aggregate: true})
	zl := func(args ...string) result { t.Helper(); return zlAt(t, st.URL, nil, args...) }
	for range 3 {
		expectCode(t, zl("acquire", "--entity", "key-1", "--resource", "gpt-4", "--limit", "rpm=100/minute", "--limit", "tpm=100000/minute",
			"--consume", "rpm=1", "--consume", "tpm=700"), exitOK)
	}
	expectCode(t, zl("acquire", "--entity", "key-2", "--resource", "gpt-4", "--limit", "tpm=100000/minute", "--consume", "tpm=300"), exitOK)
	// The aggregator runs on the stream: wait until it has folded all four acquires in.
	deadline := time.Now().Add(60 * time.Second)
	var r result
	for {
		r = zl("usage", "--resource", "gpt-4", "--output", "json")
		var u struct {
			Windows []window `json:"windows"`
		}
		decodeOut(t, r, &u)
		var acq, tpm int64
		for _, w := range u.Windows {
			acq += w.Acquires
			tpm += w.Counters["tpm"]
		}
		if acq == 4 && tpm == 2400 {
			if len(u.Windows) < 24 {
				t.Fatalf("a day of hourly windows should be filled in: %d", len(u.Windows))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never reached 4 acquires and 2400 tpm: %s", r.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r = zl("usage", "--entity", "key-1", "--resource", "gpt-4")
	// (Peaks are not asserted: the acquires may straddle an hour.)
	expectCode(t, r, exitOK, "acquires per hour (peak ", "tpm tokens per hour (peak ", "█", "RPM")
	r = zl("usage", "--entity", "key-1", "--window", "daily", "--since", "3d", "--counter", "tpm")
	expectCode(t, r, exitOK, "tpm tokens per day (peak ", "█")
	if strings.Contains(r.out, "acquires per") {
		t.Fatalf("--counter plots only that counter: %s", r.out)
	}
	expectCode(t, zl("usage", "--entity", "key-1", "--window", "weekly"), exitBadInput, "hourly or daily")
	expectCode(t, zl("usage"), exitBadInput)
}

// status reads a stack's outputs from CloudFormation (here a stand-in answering DescribeStacks)
// and probes the API its ApiUrl names.
func TestStatusOfADeployedStack(t *testing.T) {
	st := stacktest.Start(t, stacktest.Options{})
	var sawAuth bool
	cfn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		sawAuth = strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256")
		if r.Form.Get("Action") != "DescribeStacks" || r.Form.Get("StackName") != "ZaeLimiter" {
			w.WriteHeader(400)
			fmt.Fprint(w, `<ErrorResponse><Error><Code>ValidationError</Code><Message>Stack does not exist</Message></Error></ErrorResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>
<StackName>ZaeLimiter</StackName><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-11-01T00:00:00Z</CreationTime>
<LastUpdatedTime>2026-12-01T10:00:00Z</LastUpdatedTime>
<Outputs><member><OutputKey>ApiUrl</OutputKey><OutputValue>%s</OutputValue></member>
<member><OutputKey>TableName</OutputKey><OutputValue>%s</OutputValue></member></Outputs>
</member></Stacks></DescribeStacksResult></DescribeStacksResponse>`, st.URL, st.Table)
	}))
	defer cfn.Close()
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_CLOUDFORMATION": cfn.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	vars := map[string]string{envEndpoint: ""}
	r := zlAt(t, "", vars, "status", "--stack", "ZaeLimiter")
	expectCode(t, r, exitOK, "UPDATE_COMPLETE", "output TableName", st.Table, "api answers", "yes (")
	if !sawAuth {
		t.Fatal("DescribeStacks was not signed")
	}
	// The endpoint of every other command comes from the stack's outputs too.
	expectCode(t, zlAt(t, "", map[string]string{envEndpoint: "", envStack: "ZaeLimiter"}, "entity", "create", "via-stack"), exitOK, "via-stack")
	expectCode(t, zlAt(t, "", vars, "status", "--stack", "Other"), exitUnavailable, "Stack does not exist")
}

// The proxy signs every request with SigV4 for execute-api and forwards it.
func TestProxySigns(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		fmt.Fprintf(w, "upstream saw %s %s", r.Method, r.URL.Path)
	}))
	defer upstream.Close()
	for k, v := range map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb stacktest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"proxy", "--endpoint", upstream.URL, "--sign", "always", "--listen", "127.0.0.1:0"},
			env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if s, ok := strings.CutPrefix(out.String(), "proxying "); ok {
			base, _, _ = strings.Cut(s, " ")
		} else if time.Now().After(deadline) {
			t.Fatalf("proxy did not start: %s %s", out.String(), errb.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/dashboard?x=1", nil)
	req.Header.Set("Cookie", "session=browser")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	auth := got.Get("Authorization")
	cookie := got.Get("Cookie")
	mu.Unlock()
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/execute-api/aws4_request") || cookie != "" {
		t.Fatalf("upstream got Authorization %q, Cookie %q", auth, cookie)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("proxy exit %d: %s", code, errb.String())
	}
}

func TestHelpAndCompletion(t *testing.T) {
	var walk func(path []string, c *command)
	walk = func(path []string, c *command) {
		r := zlAt(t, "", nil, append(path, "--help")...)
		expectCode(t, r, exitOK, "Usage: zl")
		for _, s := range c.sub {
			walk(append(append([]string{}, path...), s.name), s)
		}
	}
	walk(nil, commands())
	expectCode(t, zlAt(t, "", nil, "nonsense"), exitBadInput, "unknown command")
	expectCode(t, zlAt(t, "", nil, "limits"), exitBadInput, "plan")
	r := zlAt(t, "", nil, "completion", "bash")
	expectCode(t, r, exitOK, "complete -o default -F _zl zl", `"limits plan"`, "--detailed-exitcode", "--endpoint")
	// The script completes in a real bash.
	script := filepath.Join(t.TempDir(), "zl.bash")
	if err := os.WriteFile(script, []byte(r.out), 0o600); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{"zl lim": "limits", "zl limits p": "plan", "zl limits plan --det": "--detailed-exitcode", "zl usage --ent": "--entity"} {
		words := strings.Fields(line)
		cmd := exec.Command("bash", "-c", fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _zl; echo "${COMPREPLY[@]}"`, script, line, len(words)-1))
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("bash completes %q as %q (%v), want %q", line, out, err, want)
		}
	}
	expectCode(t, zlAt(t, "", nil, "completion", "zsh"), exitOK, "bashcompinit")
	expectCode(t, zlAt(t, "", nil, "completion", "fish"), exitOK, "__fish_seen_subcommand_from limits")
	expectCode(t, zlAt(t, "", nil, "completion", "tcsh"), exitBadInput)
	expectCode(t, zlAt(t, "", nil, "entity", "get", "x", "--output", "yaml"), exitBadInput, "--output")
}
