package usage_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func TestQueryValidation(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	r := usage.NewReader(tbl)
	from := time.Date(2026, 11, 26, 19, 30, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	const q = `"q":{"e":"k1","r":"gpt-4","w":"hourly"},`
	tok := func(e, res, w, s string) string {
		return b64(`{` + q + `"e":"` + e + `","r":"` + res + `","w":"` + w + `","s":"` + s + `"}`)
	}
	good := tok("k1", "gpt-4", "hourly", "2026-11-26T19:00:00Z")
	cases := []struct {
		name string
		arg  string
		call func() error
	}{
		{"window", usage.ArgWindow, func() error {
			_, err := r.QueryEntityUsage(ctx, "k1", "", "weekly", from, to, 0, "")
			return err
		}},
		{"from after to", usage.ArgRange, func() error {
			_, err := r.QueryResourceUsage(ctx, "gpt-4", usage.Hourly, to, from, 0, "")
			return err
		}},
		{"limit", usage.ArgLimit, func() error {
			_, err := r.QueryEntityUsage(ctx, "k1", "", usage.Daily, from, to, usage.MaxLimit+1, "")
			return err
		}},
		{"entity", usage.ArgEntity, func() error {
			_, err := r.QueryEntityUsage(ctx, "a#b", "", usage.Daily, from, to, 0, "")
			return err
		}},
		{"resource", usage.ArgResource, func() error {
			_, err := r.QueryResourceUsage(ctx, "", usage.Daily, from, to, 0, "")
			return err
		}},
	}
	for name, token := range map[string]string{
		"not base64":           "!!!",
		"not json":             b64("hello"),
		"unknown field":        b64(`{` + q + `"e":"k1","r":"gpt-4","w":"hourly","s":"2026-11-26T19:00:00Z","x":1}`),
		"no query":             b64(`{"e":"k1","r":"gpt-4","w":"hourly","s":"2026-11-26T19:00:00Z"}`),
		"another query":        b64(`{"q":{"e":"k1","w":"hourly"},"e":"k1","r":"gpt-4","w":"hourly","s":"2026-11-26T19:00:00Z"}`),
		"trailing data":        good + b64("{}"),
		"bad window":           tok("k1", "gpt-4", "weekly", "2026-11-26T19:00:00Z"),
		"unaligned start":      tok("k1", "gpt-4", "hourly", "2026-11-26T19:30:00Z"),
		"bad id":               tok("k#1", "gpt-4", "hourly", "2026-11-26T19:00:00Z"),
		"other entity":         tok("k2", "gpt-4", "hourly", "2026-11-26T19:00:00Z"),
		"other window":         tok("k1", "gpt-4", "daily", "2026-11-26T00:00:00Z"),
		"too long":             b64(string(make([]byte, 2000))),
		"json of another type": b64(`[1,2]`),
	} {
		cases = append(cases, struct {
			name string
			arg  string
			call func() error
		}{"token " + name, usage.ArgNextToken, func() error {
			_, err := r.QueryEntityUsage(ctx, "k1", "gpt-4", usage.Hourly, from, to, 0, token)
			return err
		}})
	}
	cases = append(cases, struct {
		name string
		arg  string
		call func() error
	}{"token of another resource", usage.ArgNextToken, func() error {
		_, err := r.QueryResourceUsage(ctx, "llama", usage.Hourly, from, to, 0, good)
		return err
	}})
	for _, c := range cases {
		err := c.call()
		var inv *limiter.ValidationError
		if !errors.As(err, &inv) || inv.Field != c.arg {
			t.Errorf("%s: %v, want ValidationError on %s", c.name, err, c.arg)
		}
	}
	// A well-formed token of the same query is accepted.
	if _, err := r.QueryEntityUsage(ctx, "k1", "gpt-4", usage.Hourly, from, to, 0, good); err != nil {
		t.Errorf("good token: %v", err)
	}
}

// TestQueryUnitsAndRange: whole tokens truncate toward zero, and a range selects the windows
// that overlap it.
func TestQueryUnitsAndRange(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	h19 := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	for i, m := range []int64{2500, -1500, 999} {
		start := h19.Add(time.Duration(i) * time.Hour).UnixMilli()
		err := tbl.AddUsage(ctx, storage.UsageWrite{EntityID: "k1", Resource: "gpt-4", Window: storage.WindowHourly,
			WindowStart: start, Counters: map[string]tokenbucket.Int128{"tpm": tokenbucket.I128(m)}, Acquires: 1, FirstVersion: 1, LastVersion: 1, Create: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := usage.NewReader(tbl)
	// 19:30 to 20:00 overlaps the 19:00 and 20:00 windows, not 21:00.
	p, err := r.QueryEntityUsage(ctx, "k1", "gpt-4", usage.Hourly, h19.Add(30*time.Minute), h19.Add(time.Hour), 0, "")
	if err != nil || len(p.Snapshots) != 2 || p.NextToken != "" {
		t.Fatalf("%+v %v", p, err)
	}
	s0, s1 := p.Snapshots[0], p.Snapshots[1]
	if !s0.WindowStart.Equal(h19) || s0.Counters["tpm"] != tokenbucket.I128(2) || s0.MilliCounters["tpm"] != tokenbucket.I128(2500) || s1.Counters["tpm"] != tokenbucket.I128(-1) || s1.MilliCounters["tpm"] != tokenbucket.I128(-1500) {
		t.Fatalf("units: %+v %+v", s0, s1)
	}
	if s0.WindowStart.Location() != time.UTC || s0.Window != usage.Hourly || s0.EntityID != "k1" || s0.Resource != "gpt-4" || s0.Acquires != 1 {
		t.Fatalf("fields: %+v", s0)
	}
	// An unbounded range (zero from, far to) works too.
	p, err = r.QueryResourceUsage(ctx, "gpt-4", usage.Hourly, time.Time{}, time.Date(99999, 1, 1, 0, 0, 0, 0, time.UTC), 0, "")
	if err != nil || len(p.Snapshots) != 3 {
		t.Fatalf("unbounded: %+v %v", p, err)
	}
}

// addHourly writes one hourly snapshot of tpm millitokens.
func addHourly(t *testing.T, tbl *storage.Table, entity, resource string, w storage.Window, start time.Time, tpm int64) {
	t.Helper()
	err := tbl.AddUsage(context.Background(), storage.UsageWrite{EntityID: entity, Resource: resource, Window: w,
		WindowStart: start.UnixMilli(), Counters: map[string]tokenbucket.Int128{"tpm": tokenbucket.I128(tpm)}, Acquires: 1, FirstVersion: 1, LastVersion: 1, Create: true})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTokenOutsideRange: a client pages a range that moves between pages (the default range ends
// now). A token whose snapshot left the range continues with the snapshots still in range, and
// a token beyond the range ends the query; neither is an error (DynamoDB refuses a start key
// outside the key condition, which was a 503).
func TestTokenOutsideRange(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	h := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 6 {
		addHourly(t, tbl, "k1", "gpt-4", storage.WindowHourly, h.Add(time.Duration(i)*time.Hour), int64(i+1)*1000)
		addHourly(t, tbl, "k2", "gpt-4", storage.WindowHourly, h.Add(time.Duration(i)*time.Hour), int64(i+1)*1000)
	}
	r := usage.NewReader(tbl)
	type call func(from, to time.Time, token string) (usage.Page, error)
	for name, q := range map[string]call{
		"entity+resource": func(from, to time.Time, token string) (usage.Page, error) {
			return r.QueryEntityUsage(ctx, "k1", "gpt-4", usage.Hourly, from, to, 1, token)
		},
		"entity-wide": func(from, to time.Time, token string) (usage.Page, error) {
			return r.QueryEntityUsage(ctx, "k1", "", usage.Hourly, from, to, 1, token)
		},
		"resource": func(from, to time.Time, token string) (usage.Page, error) {
			return r.QueryResourceUsage(ctx, "gpt-4", usage.Hourly, from, to, 1, token)
		},
	} {
		first, err := q(h, h.Add(5*time.Hour), "")
		if err != nil || len(first.Snapshots) != 1 || first.NextToken == "" || !first.Snapshots[0].WindowStart.Equal(h) {
			t.Fatalf("%s: first page %+v %v", name, first, err)
		}
		// The range moved two hours on: the token's snapshot (10:00) is before it.
		var got []string
		token := first.NextToken
		for token != "" {
			p, err := q(h.Add(2*time.Hour), h.Add(7*time.Hour), token)
			if err != nil {
				t.Fatalf("%s: token before the range: %v", name, err)
			}
			for _, s := range p.Snapshots {
				got = append(got, s.EntityID+"@"+s.WindowStart.Format("15"))
			}
			token = p.NextToken
		}
		want := "[k1@12 k1@13 k1@14 k1@15]"
		if name == "resource" {
			want = "[k1@12 k2@12 k1@13 k2@13 k1@14 k2@14 k1@15 k2@15]"
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%s: continued with %v, want %s", name, got, want)
		}
		// The range moved back: the token's snapshot is after it.
		p, err := q(h.Add(-5*time.Hour), h.Add(-time.Hour), first.NextToken)
		if err != nil || len(p.Snapshots) != 0 || p.NextToken != "" {
			t.Errorf("%s: token after the range: %+v %v", name, p, err)
		}
	}
}

// TestEntityWideTokenOfAnotherWindow: the entity-wide query refuses a token of the same entity's
// other window (it used to resume after it and silently skip snapshots).
func TestEntityWideTokenOfAnotherWindow(t *testing.T) {
	ctx := context.Background()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t))
	h := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		for _, res := range []string{"a", "b"} {
			addHourly(t, tbl, "k1", res, storage.WindowHourly, h.Add(time.Duration(i)*time.Hour), 1000)
		}
	}
	addHourly(t, tbl, "k1", "a", storage.WindowDaily, h.Truncate(24*time.Hour), 3000)
	addHourly(t, tbl, "k1", "b", storage.WindowDaily, h.Truncate(24*time.Hour), 3000)
	r := usage.NewReader(tbl)
	daily, err := r.QueryEntityUsage(ctx, "k1", "", usage.Daily, h.Add(-48*time.Hour), h, 1, "")
	if err != nil || daily.NextToken == "" {
		t.Fatalf("daily page: %+v %v", daily, err)
	}
	_, err = r.QueryEntityUsage(ctx, "k1", "", usage.Hourly, h, h.Add(3*time.Hour), 100, daily.NextToken)
	var inv *limiter.ValidationError
	if !errors.As(err, &inv) || inv.Field != usage.ArgNextToken {
		t.Fatalf("hourly query with a daily token: %v, want invalid next_token", err)
	}
	// A resource's token is refused by the entity-wide query too.
	one, err := r.QueryEntityUsage(ctx, "k1", "b", usage.Hourly, h, h.Add(3*time.Hour), 1, "")
	if err != nil || one.NextToken == "" {
		t.Fatalf("resource page: %+v %v", one, err)
	}
	if _, err := r.QueryEntityUsage(ctx, "k1", "", usage.Hourly, h, h.Add(3*time.Hour), 100, one.NextToken); !errors.As(err, &inv) {
		t.Fatalf("entity-wide query with a resource's token: %v", err)
	}
	// Its own tokens page through all 6.
	n, token := 0, ""
	for {
		p, err := r.QueryEntityUsage(ctx, "k1", "", usage.Hourly, h, h.Add(3*time.Hour), 1, token)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Snapshots)
		if token = p.NextToken; token == "" {
			break
		}
	}
	if n != 6 {
		t.Fatalf("paged %d hourly snapshots, want 6", n)
	}
}
