package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// A change sent again by its caller (a new request, so a new idempotency token) after it
// applied reports success and writes nothing: its audit record's condition proves it applied.
// Another change computed from the same, now stale, state is refused.
func TestAuditedWriteResent(t *testing.T) {
	ctx := context.Background()
	meter := ddbtest.NewMeter()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t, meter.Option()))
	sc := storage.Scope{Resource: "gpt-4"}
	rec := &storage.AuditRecord{Subject: storage.AuditSubjectOf(sc), ChangeID: "0123456789abcdef0123456789abcdef",
		At: now, Principal: "p", Action: "set_limits", Resource: "gpt-4", After: `{"limits":[]}`, Version: 1}
	limits := []storage.LimitConfig{{Name: "rpm", Capacity: 5, RefillAmount: 5, RefillPeriodMs: 60_000}}
	if err := tbl.PutLimits(ctx, sc, limits, now, storage.NoItem, rec, false); err != nil {
		t.Fatal(err)
	}
	resent := limits
	resent = append([]storage.LimitConfig{}, resent...)
	if err := tbl.PutLimits(ctx, sc, resent, now, storage.NoItem, rec, false); err != nil {
		t.Fatalf("resend of an applied change: %v", err)
	}
	page, err := tbl.QueryAudit(ctx, rec.Subject, 0, "")
	if err != nil || len(page.Records) != 1 || page.Records[0].ChangeID != rec.ChangeID || page.NextToken != "" {
		t.Fatalf("records %+v, %v", page, err)
	}
	it, err := tbl.GetLimitsItem(ctx, sc)
	if err != nil || it.Version != 1 || it.UpdatedAt != now {
		t.Fatalf("limits %+v, %v", it, err)
	}
	other := *rec
	other.ChangeID = "ffffffffffffffffffffffffffffffff"
	if err := tbl.PutLimits(ctx, sc, limits, now, storage.NoItem, &other, false); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("stale change: %v", err)
	}
	if err := tbl.DeleteLimits(ctx, sc, 7, &other); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("delete at the wrong version: %v", err)
	}
	if _, err := tbl.QueryAudit(ctx, rec.Subject, 0, "bm90LWEta2V5"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("foreign token: %v", err)
	}
	bad := *rec
	bad.ChangeID = "short"
	if err := tbl.PutLimits(ctx, sc, limits, now, storage.Expect(1), &bad, false); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("malformed record: %v", err)
	}
}
