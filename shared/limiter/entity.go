package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// An Entity is something limits apply to: a project, or an API key under a project. The
// hierarchy has two levels: a child's parent is a root. With cascade, an acquire for a child
// also consumes from its parent.
type Entity struct {
	ID       string
	Name     string
	ParentID string // "" for a root; fixed at creation
	// Cascade is the entity's default for AcquireRequest.Cascade (CascadeDefault).
	Cascade   bool
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

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
	case errors.Is(err, storage.ErrExists):
		return fmt.Errorf("%w: %w", ErrEntityExists, err)
	case errors.Is(err, storage.ErrParentNotFound):
		return fmt.Errorf("%w: %w", ErrParentNotFound, err)
	case errors.Is(err, storage.ErrParentIsChild):
		return fmt.Errorf("%w: %w", ErrParentIsChild, err)
	case errors.Is(err, storage.ErrHasChildren):
		return fmt.Errorf("%w: %w", ErrHasChildren, err)
	}
	return &UnavailableError{Op: op, Err: err}
}

// CreateEntity stores a new entity. A child's parent must exist and be a root
// (ErrParentNotFound, ErrParentIsChild); an id already taken returns ErrEntityExists.
func (l *Limiter) CreateEntity(ctx context.Context, e Entity) (*Entity, error) {
	if err := validateEntity(e); err != nil {
		return nil, err
	}
	now := l.now().UTC().Truncate(time.Millisecond)
	e.CreatedAt, e.UpdatedAt = now, now
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	if err := l.table.CreateEntity(ctx, toItem(e)); err != nil {
		return nil, mapStorageErr("create entity", err)
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

// UpdateEntity replaces the name, cascade default and metadata of an existing entity. The
// parent cannot change: a different ParentID returns ErrParentImmutable.
func (l *Limiter) UpdateEntity(ctx context.Context, e Entity) (*Entity, error) {
	if err := validateEntity(e); err != nil {
		return nil, err
	}
	cur, err := l.GetEntity(ctx, e.ID)
	if err != nil {
		return nil, err
	}
	if cur.ParentID != e.ParentID {
		return nil, fmt.Errorf("%w: %s has parent %q", ErrParentImmutable, e.ID, cur.ParentID)
	}
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	e.UpdatedAt = l.now().UTC().Truncate(time.Millisecond)
	it, err := l.table.UpdateEntity(ctx, toItem(e))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrEntityNotFound, e.ID)
	}
	if err != nil {
		return nil, mapStorageErr("update entity", err)
	}
	l.entities.delete(e.ID)
	return fromItem(it), nil
}

// DeleteEntity deletes an entity with its stored limits and buckets (usage snapshots stay
// until they expire). An entity with children returns ErrHasChildren and nothing is deleted.
func (l *Limiter) DeleteEntity(ctx context.Context, id string) error {
	if err := storage.ValidateID(id); err != nil {
		return invalid("id", "%v", err)
	}
	err := l.table.DeleteEntity(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrEntityNotFound, id)
	}
	if err != nil {
		return mapStorageErr("delete entity", err)
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
