package limiter_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// auditEnv is newEnv with a Network on the client (lost answers, requests of other admins).
func auditEnv(t *testing.T, sdkAttempts int, opts ...limiter.Option) (*env, *ddbtest.Network) {
	t.Helper()
	e := newEnv(t, opts...)
	nw := &ddbtest.Network{}
	e.client = ddbtest.Client(t, e.meter.Option(), e.faults.Option(), nw.Option(), func(o *dynamodb.Options) { o.RetryMaxAttempts = sdkAttempts })
	e.lim = e.newLimiter(opts...)
	return e, nw
}

func auditLog(t *testing.T, lim *limiter.Limiter, sc limiter.Scope) []limiter.AuditRecord {
	t.Helper()
	var all []limiter.AuditRecord
	tok := ""
	for {
		p, err := lim.AuditLog(ctx(), sc, 2, tok)
		if err != nil {
			t.Fatalf("AuditLog(%+v): %v", sc, err)
		}
		all = append(all, p.Records...)
		if tok = p.NextToken; tok == "" {
			return all
		}
	}
}

func actions(rs []limiter.AuditRecord) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Action)
	}
	return strings.Join(out, ",")
}

func jsonEq(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if len(got) == 0 && want == "" {
		return
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %q is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("%s = %s, want %s", what, gb, wb)
	}
}

func TestAuditRecordsEveryAdminChange(t *testing.T) {
	e := newEnv(t, limiter.WithAuditRetention(48*time.Hour))
	c := limiter.WithActor(ctx(), limiter.Actor{Principal: "arn:aws:iam::123456789012:user/alice", RequestID: "req-1"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	_, err := e.lim.CreateEntity(c, limiter.Entity{ID: "proj", Name: "P"})
	must(err)
	_, err = e.lim.CreateEntity(c, limiter.Entity{ID: "key", ParentID: "proj", Cascade: true})
	must(err)
	_, err = e.lim.UpdateEntity(c, limiter.Entity{ID: "proj", Name: "Production", Metadata: map[string]string{"tier": "gold"}})
	must(err)
	// The same update again changes nothing: no write, no record.
	e.meter.Reset()
	_, err = e.lim.UpdateEntity(c, limiter.Entity{ID: "proj", Name: "Production", Metadata: map[string]string{"tier": "gold"}})
	must(err)
	if u := e.meter.Snapshot(); u["TransactWriteItems"].Requests != 0 {
		t.Fatalf("a no-op update wrote: %+v", u)
	}
	must(e.lim.SetLimits(c, limiter.EntityResource("key", "gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 10)}))
	must(e.lim.SetLimits(c, limiter.EntityResource("key", "gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 20)}))
	must(e.lim.SetLimits(c, limiter.EntityResource("key", "gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 20)})) // no-op
	must(e.lim.SetLimits(c, limiter.EntityDefault("key"), []limiter.Limit{limiter.PerHour("tph", 5)}))
	must(e.lim.SetLimits(c, limiter.ResourceDefault("gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 7)}))
	must(e.lim.SetLimits(ctx(), limiter.SystemDefault(), []limiter.Limit{limiter.PerMinute("rpm", 1)}))
	must(e.lim.DeleteLimits(c, limiter.EntityResource("key", "gpt-4")))
	must(e.lim.DeleteEntity(c, "key"))

	key := auditLog(t, e.lim, limiter.EntityDefault("key"))
	if got := actions(key); got != "delete_entity,delete_limits,set_limits,set_limits,set_limits,create_entity" {
		t.Fatalf("key's log: %s", got)
	}
	for i, r := range key {
		if r.Principal != "arn:aws:iam::123456789012:user/alice" || r.RequestID != "req-1" || len(r.ID) != 32 || r.EntityID != "key" {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && !r.At.Before(key[i-1].At) {
			t.Fatalf("records not newest first, strictly: %v then %v", key[i-1].At, r.At)
		}
	}
	jsonEq(t, "delete before", key[0].Before,
		`{"id":"key","name":"","parent_id":"proj","cascade":true,"metadata":{},"limits":{"_default_":{"limits":[{"name":"tph","capacity":5,"refill_amount":5,"refill_period_ms":3600000}]}}}`)
	jsonEq(t, "delete after", key[0].After, "")
	jsonEq(t, "delete_limits before", key[1].Before, `{"limits":[{"name":"rpm","capacity":20,"refill_amount":20,"refill_period_ms":60000}]}`)
	if key[1].Resource != "gpt-4" || key[1].Version != 0 || key[2].Resource != "_default_" || key[2].Version != 1 {
		t.Fatalf("limits records: %+v %+v", key[1], key[2])
	}
	// The second set of gpt-4 replaced the first: before = 10/min, after = 20/min, version 2.
	jsonEq(t, "set before", key[3].Before, `{"limits":[{"name":"rpm","capacity":10,"refill_amount":10,"refill_period_ms":60000}]}`)
	jsonEq(t, "set after", key[3].After, `{"limits":[{"name":"rpm","capacity":20,"refill_amount":20,"refill_period_ms":60000}]}`)
	if key[3].Version != 2 || key[4].Version != 1 || key[4].Before != nil {
		t.Fatalf("versions: %+v %+v", key[3], key[4])
	}

	proj := auditLog(t, e.lim, limiter.EntityDefault("proj"))
	if got := actions(proj); got != "update_entity,create_entity" {
		t.Fatalf("proj's log: %s", got)
	}
	jsonEq(t, "update before", proj[0].Before, `{"id":"proj","name":"P","cascade":false,"metadata":{}}`)
	jsonEq(t, "update after", proj[0].After, `{"id":"proj","name":"Production","cascade":false,"metadata":{"tier":"gold"}}`)
	if proj[0].Version != 2 {
		t.Fatalf("update version %d", proj[0].Version)
	}
	if got := actions(auditLog(t, e.lim, limiter.ResourceDefault("gpt-4"))); got != "set_limits" {
		t.Fatalf("resource log: %s", got)
	}
	sys := auditLog(t, e.lim, limiter.SystemDefault())
	if len(sys) != 1 || sys[0].Principal != limiter.UnknownPrincipal {
		t.Fatalf("system log: %+v", sys)
	}

	// Retention: the record's TTL is its time plus 48 h.
	out, err := e.client.Query(ctx(), &dynamodb.QueryInput{TableName: aws.String(e.table),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "AUDIT#SYSTEM"}}})
	must(err)
	ttl := out.Items[0]["ttl"].(*types.AttributeValueMemberN).Value
	if want := sys[0].At.Add(48 * time.Hour).Unix(); ttl != jsonNum(want) {
		t.Fatalf("ttl %s, want %d", ttl, want)
	}

	// Bad page tokens and sizes are refused as bad input.
	var ve *limiter.ValidationError
	for _, tok := range []string{"not-a-token", "MTIz", "!!"} {
		if _, err := e.lim.AuditLog(ctx(), limiter.EntityDefault("key"), 2, tok); !errors.As(err, &ve) || ve.Field != "next_token" {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	if _, err := e.lim.AuditLog(ctx(), limiter.EntityDefault("key"), 101, ""); !errors.As(err, &ve) {
		t.Fatalf("limit 101: %v", err)
	}
	if _, err := e.lim.AuditLog(ctx(), limiter.EntityDefault("bad#id"), 0, ""); !errors.As(err, &ve) {
		t.Fatalf("bad id: %v", err)
	}
}

func jsonNum(v int64) string { b, _ := json.Marshal(v); return string(b) }

// A change whose answer is lost applies once with one record, whether the SDK resends it (same
// ClientRequestToken) or the limiter does (same change id).
func TestAuditLostResponse(t *testing.T) {
	for _, c := range []struct {
		name        string
		sdkAttempts int
		resend      bool
	}{{"SDK resends", 3, true}, {"limiter resends", 1, false}} {
		t.Run(c.name, func(t *testing.T) {
			e, nw := auditEnv(t, c.sdkAttempts)
			steps := []struct {
				op string
				fn func() error
			}{
				{"create", func() error { _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "a"}); return err }},
				{"update", func() error { _, err := e.lim.UpdateEntity(ctx(), limiter.Entity{ID: "a", Name: "A"}); return err }},
				{"set", func() error {
					return e.lim.SetLimits(ctx(), limiter.EntityDefault("a"), []limiter.Limit{limiter.PerMinute("rpm", 3)})
				}},
				{"delete limits", func() error { return e.lim.DeleteLimits(ctx(), limiter.EntityDefault("a")) }},
				{"delete", func() error { return e.lim.DeleteEntity(ctx(), "a") }},
			}
			want := 1 // the SDK's resend is inside one call
			if !c.resend {
				want = 2 // the limiter's is a second call
			}
			for _, s := range steps {
				e.clock.Advance(time.Second)
				e.meter.Reset()
				nw.LoseResponse("TransactWriteItems", 1, c.resend)
				if err := s.fn(); err != nil {
					t.Fatalf("%s: %v", s.op, err)
				}
				if n := e.meter.Snapshot()["TransactWriteItems"].Requests; n != want {
					t.Fatalf("%s: %d transaction calls, want %d", s.op, n, want)
				}
			}
			if got := actions(auditLog(t, e.lim, limiter.EntityDefault("a"))); got != "delete_entity,delete_limits,set_limits,update_entity,create_entity" {
				t.Fatalf("log: %s", got)
			}
		})
	}
}

// Another admin changes the same limits between this admin's read and write: the write is
// refused, read again and applied on top, so each record's before is exactly the state it
// replaced and versions are consecutive.
func TestAuditConcurrentAdminChange(t *testing.T) {
	e, nw := auditEnv(t, 1)
	other := limiter.New(ddbtest.Client(t), e.table, limiter.WithClock(e.clock.Now))
	bob := limiter.WithActor(ctx(), limiter.Actor{Principal: "bob"})
	alice := limiter.WithActor(ctx(), limiter.Actor{Principal: "alice"})
	sc := limiter.ResourceDefault("gpt-4")
	if err := e.lim.SetLimits(alice, sc, []limiter.Limit{limiter.PerMinute("rpm", 1)}); err != nil {
		t.Fatal(err)
	}
	nw.Before("TransactWriteItems", 1, func(context.Context) {
		if err := other.SetLimits(bob, sc, []limiter.Limit{limiter.PerMinute("rpm", 2)}); err != nil {
			t.Errorf("bob: %v", err)
		}
	})
	if err := e.lim.SetLimits(alice, sc, []limiter.Limit{limiter.PerMinute("rpm", 3)}); err != nil {
		t.Fatal(err)
	}
	log := auditLog(t, e.lim, sc)
	if len(log) != 3 || log[0].Principal != "alice" || log[1].Principal != "bob" {
		t.Fatalf("log: %+v", log)
	}
	if string(log[0].Before) != string(log[1].After) || string(log[1].Before) != string(log[2].After) {
		t.Fatalf("records do not chain: %s <- %s, %s <- %s", log[0].Before, log[1].After, log[1].Before, log[2].After)
	}
	if log[0].Version != 3 || log[1].Version != 2 || log[2].Version != 1 {
		t.Fatalf("versions %d %d %d", log[0].Version, log[1].Version, log[2].Version)
	}
	got, err := e.lim.GetLimits(ctx(), sc)
	if err != nil || got[0].Capacity != 3 {
		t.Fatalf("stored: %v %v", got, err)
	}

	// An entity that gains a child between the read and the delete is not deleted.
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "p"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	nw.Before("TransactWriteItems", 1, func(context.Context) {
		if _, err := other.CreateEntity(bob, limiter.Entity{ID: "c", ParentID: "p"}); err != nil {
			t.Errorf("bob: %v", err)
		}
	})
	if err := e.lim.DeleteEntity(alice, "p"); !errors.Is(err, limiter.ErrHasChildren) {
		t.Fatalf("delete of a parent that gained a child: %v", err)
	}
	if got := actions(auditLog(t, e.lim, limiter.EntityDefault("p"))); got != "create_entity" {
		t.Fatalf("p's log: %s", got)
	}
	// Limits set between a delete's read and its write: the delete is refused (the entity's
	// limits changed), reads again, and its record lists those limits too.
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "gone"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	nw.Before("TransactWriteItems", 1, func(context.Context) {
		if err := other.SetLimits(bob, limiter.EntityResource("gone", "gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 9)}); err != nil {
			t.Errorf("bob: %v", err)
		}
	})
	if err := e.lim.DeleteEntity(alice, "gone"); err != nil {
		t.Fatal(err)
	}
	gone := auditLog(t, e.lim, limiter.EntityDefault("gone"))
	if actions(gone) != "delete_entity,set_limits,create_entity" || !strings.Contains(string(gone[0].Before), `"gpt-4":{"limits":[{"name":"rpm","capacity":9`) {
		t.Fatalf("gone's log: %s; delete before %s", actions(gone), gone[0].Before)
	}
	// Limits of an entity that is not stored (the library allows them) are audited too.
	if err := e.lim.SetLimits(alice, limiter.EntityDefault("unstored"), []limiter.Limit{limiter.PerMinute("rpm", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := actions(auditLog(t, e.lim, limiter.EntityDefault("unstored"))); got != "set_limits" {
		t.Fatalf("unstored's log: %s", got)
	}
	// A change that stays contended past WithMaxAttempts is reported unavailable, not applied.
	lim := e.newLimiter(limiter.WithMaxAttempts(2))
	for i := range 2 {
		nw.Before("TransactWriteItems", 1, func(context.Context) {
			_ = other.SetLimits(bob, sc, []limiter.Limit{limiter.PerMinute("rpm", int64(10+i))})
		})
	}
	var ue *limiter.UnavailableError
	if err := lim.SetLimits(alice, sc, []limiter.Limit{limiter.PerMinute("rpm", 99)}); !errors.As(err, &ue) {
		t.Fatalf("contended past max attempts: %v", err)
	}
}

// A transaction cancelled by a conflict with another transaction (busy, not down) is read
// again and retried: one change, one record.
func TestAuditTransactionConflict(t *testing.T) {
	e, _ := auditEnv(t, 1)
	conflict := &types.TransactionCanceledException{Message: aws.String("conflict"), CancellationReasons: []types.CancellationReason{
		{Code: aws.String("TransactionConflict")}, {Code: aws.String("None")}}}
	e.faults.Fail("TransactWriteItems", 2, conflict)
	if err := e.lim.SetLimits(ctx(), limiter.SystemDefault(), []limiter.Limit{limiter.PerMinute("rpm", 5)}); err != nil {
		t.Fatalf("conflicted twice, then free: %v", err)
	}
	if n := e.meter.Snapshot()["TransactWriteItems"].Requests; n != 1 {
		t.Fatalf("%d transactions reached DynamoDB, want 1 (the two conflicts were injected before sending)", n)
	}
	if got := actions(auditLog(t, e.lim, limiter.SystemDefault())); got != "set_limits" {
		t.Fatalf("log: %s", got)
	}
}

// Admin writes cost one transaction with the audit record (2 items: 4 WCU on AWS) and the read
// of the state they replace; see docs/benchmarks.md.
func TestAdminWriteCost(t *testing.T) {
	e := newEnv(t)
	for _, s := range []struct {
		name string
		fn   func() error
		want map[string]int
	}{
		{"create root", func() error { _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "p"}); return err },
			map[string]int{"TransactWriteItems": 1}},
		{"create child", func() error { _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "c", ParentID: "p"}); return err },
			map[string]int{"TransactWriteItems": 1}},
		{"update", func() error { _, err := e.lim.UpdateEntity(ctx(), limiter.Entity{ID: "p", Name: "x"}); return err },
			map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"set resource limits", func() error {
			return e.lim.SetLimits(ctx(), limiter.ResourceDefault("gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 1)})
		}, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"set resource limits unchanged", func() error {
			return e.lim.SetLimits(ctx(), limiter.ResourceDefault("gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 1)})
		}, map[string]int{"GetItem": 1}},
		{"delete resource limits", func() error { return e.lim.DeleteLimits(ctx(), limiter.ResourceDefault("gpt-4")) },
			map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"set entity limits", func() error {
			return e.lim.SetLimits(ctx(), limiter.EntityDefault("c"), []limiter.Limit{limiter.PerMinute("rpm", 1)})
		}, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"set entity limits unchanged", func() error {
			return e.lim.SetLimits(ctx(), limiter.EntityDefault("c"), []limiter.Limit{limiter.PerMinute("rpm", 1)})
		}, map[string]int{"GetItem": 1}},
		{"delete entity limits", func() error { return e.lim.DeleteLimits(ctx(), limiter.EntityDefault("c")) },
			map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"set entity+resource limits", func() error {
			return e.lim.SetLimits(ctx(), limiter.EntityResource("c", "gpt-4"), []limiter.Limit{limiter.PerMinute("rpm", 1)})
		}, map[string]int{"GetItem": 1, "TransactWriteItems": 1}},
		{"delete entity (with one limits item)", func() error { return e.lim.DeleteEntity(ctx(), "c") },
			map[string]int{"Query": 3, "TransactWriteItems": 1, "BatchWriteItem": 1}},
	} {
		e.meter.Reset()
		if err := s.fn(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := map[string]int{}
		for op, u := range e.meter.Snapshot() {
			got[op] = u.Requests
			// Only a child's own item has index keys (GSI1): nothing else writes an index.
			if u.IndexWCU != 0 && s.name != "create child" && !strings.HasPrefix(s.name, "delete entity") {
				t.Fatalf("%s wrote an index: %+v", s.name, u)
			}
		}
		if len(got) != len(s.want) {
			t.Fatalf("%s: requests %v, want %v", s.name, got, s.want)
		}
		for op, n := range s.want {
			if got[op] != n {
				t.Fatalf("%s: requests %v, want %v", s.name, got, s.want)
			}
		}
	}
}
