package limiter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// Limits of an entity's descriptive fields.
const (
	MaxEntityNameLength = 256
	MaxMetadataEntries  = 32
	MaxMetadataLength   = 1024 // longest metadata key or value
)

func validateEntity(e Entity) error {
	if err := storage.ValidateID(e.ID); err != nil {
		return invalid("id", "%v", err)
	}
	if e.ParentID != "" {
		if err := storage.ValidateID(e.ParentID); err != nil {
			return invalid("parent_id", "%v", err)
		}
		if e.ParentID == e.ID {
			return invalid("parent_id", "an entity cannot be its own parent")
		}
	}
	if len(e.Name) > MaxEntityNameLength {
		return invalid("name", "at most %d bytes", MaxEntityNameLength)
	}
	if len(e.Metadata) > MaxMetadataEntries {
		return invalid("metadata", "at most %d entries", MaxMetadataEntries)
	}
	for k, v := range e.Metadata {
		if k == "" || len(k) > MaxMetadataLength || len(v) > MaxMetadataLength {
			return invalid("metadata", "keys must be 1 to %d bytes and values at most %d", MaxMetadataLength, MaxMetadataLength)
		}
	}
	return nil
}

func toItem(e Entity) storage.EntityItem {
	return storage.EntityItem{ID: e.ID, Name: e.Name, ParentID: e.ParentID, Cascade: e.Cascade, Metadata: e.Metadata,
		CreatedAt: e.CreatedAt.UnixMilli(), UpdatedAt: e.UpdatedAt.UnixMilli()}
}

func fromItem(it *storage.EntityItem) *Entity {
	md := it.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return &Entity{ID: it.ID, Name: it.Name, ParentID: it.ParentID, Cascade: it.Cascade, Metadata: md,
		CreatedAt: time.UnixMilli(it.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(it.UpdatedAt).UTC()}
}

// mapStorageErr turns storage's errors into the limiter's; other errors become
// *UnavailableError.
func mapStorageErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	}
	for _, r := range []struct{ stored, sentinel error }{
		{storage.ErrExists, ErrEntityExists},
		{storage.ErrParentNotFound, ErrParentNotFound},
		{storage.ErrParentIsChild, ErrParentIsChild},
		{storage.ErrHasChildren, ErrHasChildren},
		{storage.ErrEntityNotStored, ErrEntityNotFound},
	} {
		if errors.Is(err, r.stored) {
			return &refusal{sentinel: r.sentinel, err: err, about: strings.Trim(strings.ReplaceAll(
				strings.Replace(err.Error(), r.stored.Error(), "", 1), ": : ", ": "), ": ")}
		}
	}
	return &UnavailableError{Op: op, Err: err}
}

// refusal is a storage refusal as the limiter reports it: its sentinel's words and what the
// refusal is about, without storage's own wording (which API answers would repeat).
// errors.Is finds both the limiter's sentinel and storage's.
type refusal struct {
	sentinel, err error
	about         string
}

func (e *refusal) Error() string {
	if e.about == "" {
		return e.sentinel.Error()
	}
	return e.sentinel.Error() + ": " + e.about
}

func (e *refusal) Unwrap() []error { return []error{e.sentinel, e.err} }

// CreateEntity stores a new entity with its audit record (see AuditRecord and WithActor). A
// child's parent must exist and be a root (ErrParentNotFound, ErrParentIsChild); an id already
// taken returns ErrEntityExists.
func (l *Limiter) CreateEntity(ctx context.Context, e Entity) (*Entity, error) {
	if err := validateEntity(e); err != nil {
		return nil, err
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	err := l.audited(ctx, "create entity", func(context.Context) (*change, error) {
		it := toItem(e)
		return &change{rec: storage.AuditRecord{Subject: storage.AuditSubjectEntity(e.ID), Action: AuditCreateEntity,
			EntityID: e.ID, After: auditEntity(&it, nil), Version: 1},
			write: func(ctx context.Context, rec *storage.AuditRecord) error {
				e.CreatedAt = time.UnixMilli(rec.At).UTC()
				e.UpdatedAt = e.CreatedAt
				return l.table.CreateEntity(ctx, toItem(e), rec)
			}}, nil
	})
	if err != nil {
		return nil, err
	}
	l.entities.delete(e.ID)
	return &e, nil
}

// GetEntity returns the entity, or ErrEntityNotFound.
func (l *Limiter) GetEntity(ctx context.Context, id string) (*Entity, error) {
	if err := storage.ValidateID(id); err != nil {
		return nil, invalid("id", "%v", err)
	}
	it, err := l.table.GetEntity(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrEntityNotFound, id)
	}
	if err != nil {
		return nil, mapStorageErr("get entity", err)
	}
	return fromItem(it), nil
}

// UpdateEntity replaces the name, cascade default and metadata of an existing entity, with its
// audit record. The parent cannot change: a different ParentID returns ErrParentImmutable. An
// update that changes nothing writes nothing (no record) and returns the entity as stored.
func (l *Limiter) UpdateEntity(ctx context.Context, e Entity) (*Entity, error) {
	if err := validateEntity(e); err != nil {
		return nil, err
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	var out *storage.EntityItem
	err := l.audited(ctx, "update entity", func(ctx context.Context) (*change, error) {
		cur, err := l.table.GetEntity(ctx, e.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrEntityNotFound, e.ID)
		}
		if err != nil {
			return nil, mapStorageErr("get entity", err)
		}
		if cur.ParentID != e.ParentID {
			return nil, fmt.Errorf("%w: %s has parent %q", ErrParentImmutable, e.ID, cur.ParentID)
		}
		next := *cur
		next.Name, next.Cascade, next.Metadata = e.Name, e.Cascade, e.Metadata
		before, after := auditEntity(cur, nil), auditEntity(&next, nil)
		if before == after {
			out = cur
			return &change{noop: true}, nil
		}
		next.Version = cur.Version + 1
		return &change{prev: cur.UpdatedAt, rec: storage.AuditRecord{Subject: storage.AuditSubjectEntity(e.ID),
			Action: AuditUpdateEntity, EntityID: e.ID, Before: before, After: after, Version: next.Version},
			write: func(ctx context.Context, rec *storage.AuditRecord) error {
				next.UpdatedAt = rec.At
				out = &next
				return l.table.UpdateEntity(ctx, next, storage.Expect(cur.Version), rec)
			}}, nil
	})
	if err != nil {
		return nil, err
	}
	l.entities.delete(e.ID)
	return fromItem(out), nil
}

// DeleteEntity deletes an entity with its stored limits and buckets (usage snapshots stay
// until they expire), and writes its audit record, whose Before holds the entity and its
// stored limits. An entity with children returns ErrHasChildren and nothing is deleted.
func (l *Limiter) DeleteEntity(ctx context.Context, id string) error {
	if err := storage.ValidateID(id); err != nil {
		return invalid("id", "%v", err)
	}
	err := l.audited(ctx, "delete entity", func(ctx context.Context) (*change, error) {
		cur, limits, err := l.table.GetEntityWithLimits(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrEntityNotFound, id)
		}
		if err != nil {
			return nil, mapStorageErr("get entity", err)
		}
		if cur.Children > 0 {
			return nil, fmt.Errorf("%w: entity %s", ErrHasChildren, id)
		}
		prev := cur.UpdatedAt // the delete comes after every change of what it deletes
		for _, it := range limits {
			prev = max(prev, it.UpdatedAt)
		}
		return &change{prev: prev, rec: storage.AuditRecord{Subject: storage.AuditSubjectEntity(id),
			Action: AuditDeleteEntity, EntityID: id, Before: auditEntity(cur, limits)},
			write: func(ctx context.Context, rec *storage.AuditRecord) error { return l.table.DeleteEntity(ctx, cur, rec) }}, nil
	})
	if err != nil {
		return err
	}
	l.entities.delete(id)
	l.limits.clear()
	l.buckets.clear()
	return nil
}

// ListChildren returns the children of a parent (none for an unknown id). The list comes from
// an index and may lag a creation by a moment.
func (l *Limiter) ListChildren(ctx context.Context, parentID string) ([]Entity, error) {
	if err := storage.ValidateID(parentID); err != nil {
		return nil, invalid("id", "%v", err)
	}
	items, err := l.table.ListChildren(ctx, parentID)
	if err != nil {
		return nil, mapStorageErr("list children", err)
	}
	out := make([]Entity, 0, len(items))
	for i := range items {
		out = append(out, *fromItem(&items[i]))
	}
	return out, nil
}

// entity returns the entity through the cache; nil when it does not exist.
func (l *Limiter) entity(ctx context.Context, id string) (*storage.EntityItem, error) {
	if e, ok := l.entities.get(id); ok {
		return e, nil
	}
	e, err := l.table.GetEntity(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		e, err = nil, nil
	}
	if err != nil {
		return nil, &UnavailableError{Op: "get entity", Err: err}
	}
	l.entities.put(id, e)
	return e, nil
}
