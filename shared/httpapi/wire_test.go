package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

func TestLimitSpellings(t *testing.T) {
	cases := []struct {
		json string
		want limiter.Limit
	}{
		{`{"name":"rpm","rate":100,"period":"minute"}`, limiter.PerMinute("rpm", 100)},
		{`{"name":"rps","rate":10,"period":"second","burst":50}`, limiter.PerSecond("rps", 10).WithBurst(50)},
		{`{"name":"day","rate":5,"period":"day"}`, limiter.PerDay("day", 5)},
		{`{"name":"hr","rate":7,"period":"hour"}`, limiter.PerHour("hr", 7)},
		{`{"name":"tpm","capacity":20000,"refill_amount":10000,"refill_period_seconds":60}`, limiter.NewLimit("tpm", 20000, 10000, time.Minute)},
		{`{"name":"x","capacity":1,"refill_amount":1,"refill_period_seconds":0.001}`, limiter.NewLimit("x", 1, 1, time.Millisecond)},
		{`{"name":"x","capacity":1,"refill_amount":1,"refill_period_seconds":1.500}`, limiter.NewLimit("x", 1, 1, 1500*time.Millisecond)},
	}
	for _, c := range cases {
		var l Limit
		if err := Decode([]byte(c.json), &l, false); err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		got, err := l.Limiter("limits[0]")
		if err != nil || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.json, got, err, c.want)
		}
		// The full spelling reads back to the same limit.
		b, _ := json.Marshal(LimitFrom(got))
		var back Limit
		if err := Decode(b, &back, false); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if again, err := back.Limiter("x"); err != nil || again != got {
			t.Errorf("round trip of %s: %v, %v", b, again, err)
		}
	}
}

func TestLimitRefused(t *testing.T) {
	for _, js := range []string{
		`{"name":"a"}`,
		`{"name":"a","rate":1,"period":"minute","capacity":1}`,
		`{"name":"a","rate":1}`,
		`{"name":"a","rate":1,"period":"week"}`,
		`{"name":"a","rate":0,"period":"minute"}`,
		`{"name":"a","rate":-1,"period":"minute"}`,
		`{"name":"a","capacity":1,"refill_amount":1}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":0}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":0.0001}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":-1}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":1e3}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":1e999999999}`,
		`{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":999999999999999}`,
		`{"name":"bad name","rate":1,"period":"minute"}`,
		`{"name":"","rate":1,"period":"minute"}`,
		`{"name":"a","rate":1000000000001,"period":"minute"}`,
	} {
		var l Limit
		err := Decode([]byte(js), &l, false)
		if err == nil {
			_, err = l.Limiter("limits[0]")
		}
		if status, body := statusOf(err); status != http.StatusBadRequest || body.Error != CodeInvalidRequest {
			t.Errorf("%s: got %d %+v (%v), want 400", js, status, body, err)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	type body struct {
		A string           `json:"a"`
		M map[string]int64 `json:"m"`
	}
	cases := []struct {
		in        string
		wantField string
		wantCode  int
	}{
		{`{"a":"x","b":1}`, "b", 400},
		{`{"a":1}`, "a", 400},
		{`{"m":{"x":1.5}}`, "m", 400},
		{`{"m":{"x":1e30}}`, "m", 400},
		{`{"a":"x"} {}`, "", 400},
		{`{"a":"x"`, "", 400},
		{`[1,2]`, "", 400},
		{`"x"`, "", 400},
		{`nul`, "", 400},
		{``, "", 400},
		{`{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "", 413},
		// What encoding/json accepts and the contract does not.
		{`{"a":"x","a":"y"}`, "a", 400},
		{`{"m":{"x":1,"x":2}}`, "m.x", 400},
		{`{"A":"x"}`, "A", 400},
		{`{"m":{"x":1},"M":{}}`, "M", 400},
	}
	for _, c := range cases {
		var b body
		err := Decode([]byte(c.in), &b, false)
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%.40q: got %v, want a *RequestError", c.in, err)
			continue
		}
		if re.Status != c.wantCode || (c.wantField != "" && !strings.HasPrefix(re.Field, c.wantField)) {
			t.Errorf("%.40q: got %d field %q (%s), want %d field %q", c.in, re.Status, re.Field, re.Message, c.wantCode, c.wantField)
		}
	}
	var b body
	if err := Decode([]byte(" \n"), &b, true); err != nil {
		t.Errorf("empty body with emptyOK: %v", err)
	}
	if err := Decode([]byte(`{"a":"x","m":{"y":2}}`), &b, false); err != nil || b.A != "x" || b.M["y"] != 2 {
		t.Errorf("valid body: %+v, %v", b, err)
	}
}

// TestDecodeStrictWire: the request types refuse a duplicate member in a nested limit, a member
// name in another case, and refill_period_seconds sent as a string.
func TestDecodeStrictWire(t *testing.T) {
	for in, field := range map[string]string{
		`{"entity_id":"k","resource":"r","limits":[{"name":"a","rate":1,"period":"minute","rate":2}]}`: "limits[0].rate",
		`{"Entity_ID":"k","resource":"r"}`: "Entity_ID",
		`{"entity_id":"k","resource":"r","limits":[{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":"60"}]}`: "limits[0].refill_period_seconds",
	} {
		var req AcquireRequest
		err := Decode([]byte(in), &req, false)
		var re *RequestError
		if !errors.As(err, &re) || re.Status != 400 || re.Field != field {
			t.Errorf("%s: %v, want a 400 on %s", in, err, field)
		}
	}
	var req AcquireRequest
	in := `{"entity_id":"k","resource":"r","limits":[{"name":"a","capacity":1,"refill_amount":1,"refill_period_seconds":0.5}],"consume":{"a":1}}`
	if err := Decode([]byte(in), &req, false); err != nil || req.Limits[0].RefillPeriodSeconds != "0.5" {
		t.Errorf("valid request: %+v %v", req, err)
	}
}

func TestAcquireRequestConversion(t *testing.T) {
	yes, no := true, false
	r := AcquireRequest{EntityID: "k", Resource: "r", Consume: map[string]int64{"rpm": 1},
		Limits: []Limit{LimitFrom(limiter.PerMinute("rpm", 10))}, Cascade: &yes, FailureMode: FailOpen,
		RequestID: "req-1", LeaseTTLSeconds: 60}
	got, err := r.Limiter()
	if err != nil {
		t.Fatal(err)
	}
	if got.Cascade != limiter.CascadeOn || got.FailureMode != limiter.FailOpen || got.LeaseTTL != time.Minute || got.RequestID != "req-1" || got.Limits[0] != limiter.PerMinute("rpm", 10) {
		t.Errorf("got %+v", got)
	}
	r.Cascade, r.FailureMode, r.LeaseTTLSeconds = &no, FailClosed, 0
	if got, _ = r.Limiter(); got.Cascade != limiter.CascadeOff || got.FailureMode != limiter.FailClosed || got.LeaseTTL != DefaultLeaseTTL {
		t.Errorf("got %+v", got)
	}
	r.Cascade, r.FailureMode = nil, ""
	if got, _ = r.Limiter(); got.Cascade != limiter.CascadeDefault || got.FailureMode != limiter.FailureModeDefault {
		t.Errorf("got %+v", got)
	}
	// The client's conversion is the inverse.
	back := NewAcquireRequest(limiter.AcquireRequest{EntityID: "k", Resource: "r", Consume: map[string]int64{"rpm": 1},
		Limits: []limiter.Limit{limiter.PerMinute("rpm", 10)}, Cascade: limiter.CascadeOff, FailureMode: limiter.FailOpen,
		LeaseTTL: 90 * time.Second, RequestID: "x"})
	if again, err := back.Limiter(); err != nil || again.Cascade != limiter.CascadeOff || again.FailureMode != limiter.FailOpen || again.LeaseTTL != 90*time.Second {
		t.Errorf("round trip: %+v %v", again, err)
	}

	for name, bad := range map[string]AcquireRequest{
		"no entity":        {Resource: "r", Consume: map[string]int64{"a": 1}},
		"no resource":      {EntityID: "k", Consume: map[string]int64{"a": 1}},
		"no consume":       {EntityID: "k", Resource: "r"},
		"negative":         {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": -1}},
		"failure mode":     {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, FailureMode: "maybe"},
		"request id chars": {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, RequestID: "a#b"},
		"ttl":              {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, LeaseTTLSeconds: 86401},
		"ttl negative":     {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, LeaseTTLSeconds: -1},
		"commit+request":   {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, Commit: true, RequestID: "x"},
		"commit+ttl":       {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, Commit: true, LeaseTTLSeconds: 5},
		"17 limits":        {EntityID: "k", Resource: "r", Consume: map[string]int64{"a": 1}, Limits: make([]Limit, 17)},
	} {
		if _, err := bad.Limiter(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if status, _ := statusOf(err); status != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, status)
		}
	}
}

// The JSON of a status is the library's: the 200 statuses and the 429 limits are one shape.
func TestLimitStatusMatchesLibrary(t *testing.T) {
	s := limiter.LimitStatus{EntityID: "e", Resource: "r", Limit: limiter.PerMinute("rpm", 100), Available: -3,
		Requested: 7, Exceeded: true, RetryAfter: 6123 * time.Millisecond}
	lib, _ := json.Marshal(s)
	ours, _ := json.Marshal(StatusFrom(s))
	if string(lib) != string(ours) {
		t.Fatalf("library %s\nhttpapi %s", lib, ours)
	}
	var back LimitStatus
	if err := json.Unmarshal(lib, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.LimitStatus(); got.RetryAfter != s.RetryAfter || got.Available != -3 || got.Limit.Name != "rpm" || got.Limit.Capacity != 100 {
		t.Errorf("decoded %+v", got)
	}
	// A refusal's body decodes into RateLimitExceeded.
	e := &limiter.RateLimitExceededError{Statuses: []limiter.LimitStatus{s}, RetryAfter: s.RetryAfter}
	b, _ := json.Marshal(e)
	var rl RateLimitExceeded
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rl); err != nil || rl.RetryAfterMs != 6123 || len(rl.Limits) != 1 || rl.Error != CodeRateLimitExceeded {
		t.Errorf("429 body %s: %+v %v", b, rl, err)
	}
}

// One vocabulary for lease states: the wire's words are those stored.
func TestLeaseStatesMatchStorage(t *testing.T) {
	for wire, stored := range map[string]string{LeaseOpen: storage.LeaseOpen, LeaseCommitted: storage.LeaseCommitted, LeaseRolledBack: storage.LeaseRolledBack} {
		if wire != stored {
			t.Errorf("wire %q, stored %q", wire, stored)
		}
	}
}
