package adminapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
)

func query(q string) func(*events.APIGatewayV2HTTPRequest) {
	return func(ev *events.APIGatewayV2HTTPRequest) { ev.RawQueryString = q }
}

// Every admin change over the API is in the audit log with the caller's IAM principal from the
// request context and the API request id; the log pages, and bad input is a 400.
func TestAuditOverTheAPI(t *testing.T) {
	e := newEnv(t)
	e.handler = lambda.NewHandler(adminapi.New(e.lim, slog.New(slog.DiscardHandler), adminapi.AuditRoutes(e.lim)...))
	e.expect(event(t, "put-entity.json"), 201, ``)
	// The same PUT again (a client resending after a lost answer): 200, no change, no record.
	e.expect(event(t, "put-entity.json"), 200, ``)
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/entities/org-acme/audit"), query("")), 200, `"action":"create_entity"`)
	if r := e.call(event(t, "get-entity-audit.json", path("GET", "/v1/entities/org-acme/audit"), query(""))); strings.Count(r.Body, `"action"`) != 1 {
		t.Fatalf("a resent PUT made another record: %s", r.Body)
	}
	e.expect(event(t, "put-child-entity.json"), 201, ``)
	e.expect(event(t, "put-entity-limits.json"), 201, ``)
	e.expect(event(t, "put-entity-limits.json"), 200, ``) // the same again: no change, no record
	e.expect(event(t, "put-entity-default-limits.json"), 201, ``)
	e.expect(event(t, "delete-entity-limits.json"), 204, ``)

	var page adminapi.AuditResponse
	r := e.expect(event(t, "get-entity-audit.json", query("limit=2")), 200, `"records":[`)
	if err := json.Unmarshal([]byte(r.Body), &page); err != nil || len(page.Records) != 2 || page.NextToken == "" {
		t.Fatalf("first page: %s", r.Body)
	}
	rec := page.Records[0]
	if rec.Action != "delete_limits" || rec.Principal != "arn:aws:iam::123456789012:user/limiter-app" || rec.RequestID == "" || rec.After != nil || rec.Before == nil {
		t.Fatalf("newest record: %s", r.Body)
	}
	r = e.expect(event(t, "get-entity-audit.json", query("limit=2&next_token="+url.QueryEscape(page.NextToken))), 200, `"records":[`)
	var rest adminapi.AuditResponse
	if err := json.Unmarshal([]byte(r.Body), &rest); err != nil || len(rest.Records) != 1 || rest.Records[0].Action != "create_entity" || rest.NextToken != "" {
		t.Fatalf("second page: %s", r.Body)
	}
	for _, q := range []string{"next_token=bogus", "next_token=" + url.QueryEscape(page.NextToken) + "x", "limit=0", "limit=101", "limit=x", "since=1", "limit=1&limit=2"} {
		e.expect(event(t, "get-entity-audit.json", query(q)), 400, `"error":"invalid_request"`)
	}
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/entities/bad%23id/audit")), 400, `"error":"invalid_request"`)
	// An unknown entity's log is empty; the resource and system logs have routes of their own.
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/entities/nobody/audit"), query("")), 200, `{"records":[]}`)
	e.expect(event(t, "put-resource-limits.json"), 201, ``)
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/resources/gpt-4/audit"), query("")), 200, `"action":"set_limits"`)
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/system/audit"), query("")), 200, `{"records":[]}`)
	// Without an IAM authorizer (a direct invocation) the principal is "unknown".
	e.expect(event(t, "put-system-limits.json", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.Authorizer = nil }), 201, ``)
	e.expect(event(t, "get-entity-audit.json", path("GET", "/v1/system/audit"), query("")), 200, `"principal":"unknown"`)
}

func TestAuditRetentionFromEnvironment(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "0": true, "30": true, "-1": false, "ten": false, "1.5": false} {
		opts, err := adminapi.AuditRetention(func(string) string { return v })
		if (err == nil) != ok || (v == "" && opts != nil) || (ok && v != "" && len(opts) != 1) {
			t.Errorf("%q: %v %v", v, opts, err)
		}
	}
}

// HandleEvent (the typed entry point) passes the IAM principal on too.
func TestAuditPrincipalThroughHandleEvent(t *testing.T) {
	e := newEnv(t)
	rt := adminapi.New(e.lim, slog.New(slog.DiscardHandler), adminapi.AuditRoutes(e.lim)...)
	ev := event(t, "put-entity.json")
	ev.RequestContext.Authorizer.IAM.UserARN = "arn:aws:sts::123456789012:assumed-role/ops/carol"
	if r := rt.HandleEvent(context.Background(), ev); r.StatusCode != 201 {
		t.Fatalf("put: %d %s", r.StatusCode, r.Body)
	}
	r := rt.HandleEvent(context.Background(), event(t, "get-entity-audit.json", path("GET", "/v1/entities/org-acme/audit"), query("")))
	if !strings.Contains(r.Body, `"principal":"arn:aws:sts::123456789012:assumed-role/ops/carol"`) {
		t.Fatalf("audit: %s", r.Body)
	}
}
