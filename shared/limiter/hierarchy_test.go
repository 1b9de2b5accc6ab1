package limiter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

func TestEntityHierarchy(t *testing.T) {
	e := newEnv(t)
	proj, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "proj-1", Name: "Production", Metadata: map[string]string{"tier": "gold"}})
	if err != nil {
		t.Fatal(err)
	}
	if !proj.CreatedAt.Equal(e.clock.Now()) {
		t.Fatalf("created at %s", proj.CreatedAt)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "proj-1"}); !errors.Is(err, limiter.ErrEntityExists) {
		t.Fatalf("duplicate: %v", err)
	} else if !errors.Is(err, storage.ErrExists) || err.Error() != "entity already exists: entity proj-1" {
		t.Errorf("duplicate: %q (storage's error found: %v), want the limiter's words only, storage's error still found",
			err, errors.Is(err, storage.ErrExists))
	}
	for _, id := range []string{"key-a", "key-b"} {
		if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: id, ParentID: "proj-1", Cascade: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "orphan", ParentID: "nope"}); !errors.Is(err, limiter.ErrParentNotFound) {
		t.Fatalf("missing parent: %v", err)
	} else if err.Error() != "parent entity not found: entity orphan: nope" {
		t.Errorf("missing parent: %q, want the limiter's words only", err)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "grandchild", ParentID: "key-a"}); !errors.Is(err, limiter.ErrParentIsChild) {
		t.Fatalf("grandchild: %v", err)
	}
	if _, err := e.lim.GetEntity(ctx(), "orphan"); !errors.Is(err, limiter.ErrEntityNotFound) {
		t.Fatalf("a refused child was stored: %v", err)
	}
	var ve *limiter.ValidationError
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "self", ParentID: "self"}); !errors.As(err, &ve) {
		t.Fatalf("self parent: %v", err)
	}
	kids, err := e.lim.ListChildren(ctx(), "proj-1")
	if err != nil || len(kids) != 2 || kids[0].ID != "key-a" || kids[1].ID != "key-b" || !kids[0].Cascade {
		t.Fatalf("children %+v %v", kids, err)
	}
	got, err := e.lim.GetEntity(ctx(), "proj-1")
	if err != nil || got.Name != "Production" || got.Metadata["tier"] != "gold" || got.ParentID != "" {
		t.Fatalf("get %+v %v", got, err)
	}
	upd, err := e.lim.UpdateEntity(ctx(), limiter.Entity{ID: "key-a", ParentID: "proj-1", Name: "renamed"})
	if err != nil || upd.Name != "renamed" || upd.Cascade {
		t.Fatalf("update %+v %v", upd, err)
	}
	if _, err := e.lim.UpdateEntity(ctx(), limiter.Entity{ID: "key-a", ParentID: ""}); !errors.Is(err, limiter.ErrParentImmutable) {
		t.Fatalf("re-parent: %v", err)
	}
	if err := e.lim.DeleteEntity(ctx(), "proj-1"); !errors.Is(err, limiter.ErrHasChildren) {
		t.Fatalf("delete parent with children: %v", err)
	}
	if _, err := e.lim.GetEntity(ctx(), "proj-1"); err != nil {
		t.Fatalf("refused delete removed the parent: %v", err)
	}
	for _, id := range []string{"key-a", "key-b", "proj-1"} {
		if err := e.lim.DeleteEntity(ctx(), id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if err := e.lim.DeleteEntity(ctx(), "proj-1"); !errors.Is(err, limiter.ErrEntityNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestCascade(t *testing.T) {
	e := newEnv(t)
	mustEntity := func(en limiter.Entity) {
		if _, err := e.lim.CreateEntity(ctx(), en); err != nil {
			t.Fatal(err)
		}
	}
	mustEntity(limiter.Entity{ID: "proj"})
	mustEntity(limiter.Entity{ID: "key-a", ParentID: "proj", Cascade: true})
	mustEntity(limiter.Entity{ID: "key-b", ParentID: "proj"})
	// The project allows 1000 tpm; each key 800.
	if err := e.lim.SetLimits(ctx(), limiter.EntityDefault("proj"), []limiter.Limit{limiter.PerMinute("tpm", 1000)}); err != nil {
		t.Fatal(err)
	}
	keyLimit := limiter.PerMinute("tpm", 800)
	req := func(key string, n int64, c limiter.Cascade) limiter.AcquireRequest {
		return limiter.AcquireRequest{EntityID: key, Resource: "gpt-4", Limits: []limiter.Limit{keyLimit},
			Consume: map[string]int64{"tpm": n}, Cascade: c, UseStoredLimits: true}
	}
	e.meter.Reset()
	mustAcquire(t, e.lim, req("key-a", 600, limiter.CascadeDefault)) // key-a cascades by default
	if u := e.meter.Snapshot()["TransactWriteItems"]; u.Requests != 1 {
		t.Fatalf("cascade acquire: %+v", e.meter.Snapshot())
	}
	projTPM := limiter.PerMinute("tpm", 1000)
	if got := available(t, e, "proj", "gpt-4", projTPM); got["tpm"] != 400 {
		t.Fatalf("project after cascade: %v", got)
	}
	// key-b does not cascade by default: the project is untouched.
	mustAcquire(t, e.lim, req("key-b", 600, limiter.CascadeDefault))
	if got := available(t, e, "proj", "gpt-4", projTPM); got["tpm"] != 400 {
		t.Fatalf("project after non-cascading acquire: %v", got)
	}
	// key-b with cascade on: the project has 400 left, the key 200: the key runs out first.
	_, err := e.lim.Acquire(ctx(), req("key-b", 300, limiter.CascadeOn))
	var rle *limiter.RateLimitExceededError
	if !errors.As(err, &rle) || len(rle.Statuses) != 2 {
		t.Fatalf("want refusal with both levels, got %v", err)
	}
	if p := rle.PrimaryViolation(); p.EntityID != "key-b" || p.Available != 200 {
		t.Fatalf("primary %+v", p)
	}
	// A minute later every bucket is full again (keys 800, project 1000).
	e.clock.Advance(time.Minute)
	mustAcquire(t, e.lim, req("key-a", 300, limiter.CascadeDefault)) // key-a 500, project 700
	mustAcquire(t, e.lim, req("key-b", 600, limiter.CascadeOn))      // key-b 200, project 100
	// key-a has 500 but the project 100: the refusal names the parent; nothing is taken.
	_, err = e.lim.Acquire(ctx(), req("key-a", 200, limiter.CascadeDefault))
	if !errors.As(err, &rle) || rle.PrimaryViolation().EntityID != "proj" || len(rle.Violations()) != 1 {
		t.Fatalf("want parent refusal, got %v", err)
	}
	if got := available(t, e, "key-a", "gpt-4", keyLimit); got["tpm"] != 500 {
		t.Fatalf("child changed by a refused cascade: %v", got)
	}
	if got := available(t, e, "proj", "gpt-4", projTPM); got["tpm"] != 100 {
		t.Fatalf("parent changed by a refused cascade: %v", got)
	}
	// A cascaded lease adjusts and rolls back at both levels.
	lease := mustAcquire(t, e.lim, req("key-b", 100, limiter.CascadeOn))
	if err := lease.Adjust(ctx(), map[string]int64{"tpm": 100}); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "proj", "gpt-4", projTPM); got["tpm"] != -100 {
		t.Fatalf("parent after cascaded adjust: %v", got)
	}
	if err := lease.Rollback(ctx()); err != nil {
		t.Fatal(err)
	}
	if got := available(t, e, "proj", "gpt-4", projTPM); got["tpm"] != 100 {
		t.Fatalf("parent after cascaded rollback: %v", got)
	}
	if got := available(t, e, "key-b", "gpt-4", keyLimit); got["tpm"] != 200 {
		t.Fatalf("child after cascaded rollback: %v", got)
	}
}
