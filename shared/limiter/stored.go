package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// DefaultResource is the reserved resource name under which an entity's default limits are
// stored (EntityDefault): it cannot be acquired, nor named in a Scope's Resource.
const DefaultResource = storage.DefaultResource

// storageScope returns the storage key of sc, checking its ids.
func storageScope(sc Scope) (storage.Scope, error) {
	if sc.EntityID != "" {
		if err := storage.ValidateID(sc.EntityID); err != nil {
			return storage.Scope{}, invalid("entity_id", "%v", err)
		}
	}
	if sc.Resource != "" {
		if err := storage.ValidateID(sc.Resource); err != nil {
			return storage.Scope{}, invalid("resource", "%v", err)
		}
		if sc.Resource == storage.DefaultResource {
			return storage.Scope{}, invalid("resource", "%q is reserved: use EntityDefault", sc.Resource)
		}
	}
	out := storage.Scope{EntityID: sc.EntityID, Resource: sc.Resource}
	if sc.EntityID != "" && sc.Resource == "" {
		out.Resource = storage.DefaultResource
	}
	return out, nil
}

func toConfigs(ls []Limit) []storage.LimitConfig {
	out := make([]storage.LimitConfig, 0, len(ls))
	for _, l := range ls {
		out = append(out, storage.LimitConfig{Name: l.Name, Capacity: l.Capacity, RefillAmount: l.RefillAmount, RefillPeriodMs: l.RefillPeriod.Milliseconds()})
	}
	return out
}

func fromConfigs(cs []storage.LimitConfig) []Limit {
	out := make([]Limit, 0, len(cs))
	for _, c := range cs {
		out = append(out, NewLimit(c.Name, c.Capacity, c.RefillAmount, time.Duration(c.RefillPeriodMs)*time.Millisecond))
	}
	return out
}

// SetLimits stores the limits of a scope, replacing what was there, with its audit record (see
// AuditRecord and WithActor). At least one limit. Limits equal to those stored (same limits in
// the same order) write nothing and make no record. An entity's scope needs no stored entity
// (see SetStoredEntityLimits).
func (l *Limiter) SetLimits(ctx context.Context, sc Scope, limits []Limit) error {
	return l.setLimits(ctx, sc, limits, false)
}

// SetStoredEntityLimits is SetLimits on the condition, for an entity's scope, that the entity
// is stored: checked in the same transaction as the write, it returns ErrEntityNotFound and
// writes nothing otherwise. So limits set while DeleteEntity runs are either deleted with the
// entity or refused, never left behind for an entity that is gone. The admin API uses it.
func (l *Limiter) SetStoredEntityLimits(ctx context.Context, sc Scope, limits []Limit) error {
	return l.setLimits(ctx, sc, limits, true)
}

func (l *Limiter) setLimits(ctx context.Context, sc Scope, limits []Limit, requireEntity bool) error {
	st, err := storageScope(sc)
	if err != nil {
		return err
	}
	if len(limits) == 0 {
		return invalid("limits", "give at least one limit (delete the scope to remove them)")
	}
	if err := validateLimits(limits); err != nil {
		return err
	}
	configs := toConfigs(limits)
	after := auditLimits(configs)
	err = l.audited(ctx, "set limits", func(ctx context.Context) (*change, error) {
		c := &change{rec: storage.AuditRecord{Subject: storage.AuditSubjectOf(st), Action: AuditSetLimits,
			EntityID: st.EntityID, Resource: st.Resource, After: after, Version: 1}}
		expect := storage.NoItem
		cur, err := l.readScope(ctx, st)
		switch {
		case err != nil:
			return nil, err
		case cur != nil:
			if c.rec.Before = auditLimits(cur.Limits); c.rec.Before == after {
				return &change{noop: true}, nil
			}
			expect, c.prev, c.rec.Version = storage.Expect(cur.Version), cur.UpdatedAt, cur.Version+1
		}
		c.write = func(ctx context.Context, rec *storage.AuditRecord) error {
			return l.table.PutLimits(ctx, st, configs, rec.At, expect, rec, requireEntity)
		}
		return c, nil
	})
	if err != nil {
		return err
	}
	l.limits.clear()
	return nil
}

// GetLimits returns the limits stored for exactly this scope, or ErrLimitsNotFound.
func (l *Limiter) GetLimits(ctx context.Context, sc Scope) ([]Limit, error) {
	st, err := storageScope(sc)
	if err != nil {
		return nil, err
	}
	cs, err := l.table.GetLimits(ctx, st)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %+v", ErrLimitsNotFound, sc)
	}
	if err != nil {
		return nil, mapStorageErr("get limits", err)
	}
	return fromConfigs(cs), nil
}

// DeleteLimits deletes the limits stored for a scope with its audit record, or returns
// ErrLimitsNotFound.
func (l *Limiter) DeleteLimits(ctx context.Context, sc Scope) error {
	st, err := storageScope(sc)
	if err != nil {
		return err
	}
	err = l.audited(ctx, "delete limits", func(ctx context.Context) (*change, error) {
		cur, err := l.readScope(ctx, st)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			return nil, fmt.Errorf("%w: %+v", ErrLimitsNotFound, sc)
		}
		return &change{prev: cur.UpdatedAt, rec: storage.AuditRecord{Subject: storage.AuditSubjectOf(st), Action: AuditDeleteLimits,
			EntityID: st.EntityID, Resource: st.Resource, Before: auditLimits(cur.Limits)},
			write: func(ctx context.Context, rec *storage.AuditRecord) error {
				return l.table.DeleteLimits(ctx, st, storage.Expect(cur.Version), rec)
			}}, nil
	})
	if err != nil {
		return err
	}
	l.limits.clear()
	return nil
}

// readScope reads the stored limits of a scope for an audited change (nil when none).
func (l *Limiter) readScope(ctx context.Context, st storage.Scope) (*storage.LimitsItem, error) {
	cur, err := l.table.GetLimitsItem(ctx, st)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, mapStorageErr("get limits", err)
	}
	return cur, nil
}

// ResolveLimits returns the stored limits that apply to an entity+resource: the first scope
// that exists of entity+resource, entity default, resource default, system default. It returns
// nil when none is stored. It reads through the cache.
func (l *Limiter) ResolveLimits(ctx context.Context, entityID, resource string) ([]Limit, error) {
	if err := validateIDs(entityID, resource); err != nil {
		return nil, err
	}
	m, err := l.resolveLimits(ctx, []string{entityID}, resource)
	return m[entityID], err
}

// resolveLimits resolves the stored limits of several entities for one resource, reading what
// the cache lacks in one BatchGetItem. Entities with nothing stored map to nil.
func (l *Limiter) resolveLimits(ctx context.Context, ids []string, resource string) (map[string][]Limit, error) {
	out := make(map[string][]Limit, len(ids))
	var missing []string
	for _, id := range ids {
		if ls, ok := l.limits.get(bucketID{id, resource}); ok {
			out[id] = ls
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	var scopes []storage.Scope
	for _, id := range missing {
		scopes = append(scopes, storage.Scope{EntityID: id, Resource: resource}, storage.Scope{EntityID: id, Resource: storage.DefaultResource})
	}
	scopes = append(scopes, storage.Scope{Resource: resource}, storage.Scope{})
	found, err := l.table.BatchGetLimits(ctx, scopes)
	if err != nil {
		return nil, &UnavailableError{Op: "resolve limits", Err: err}
	}
	for _, id := range missing {
		var ls []Limit
		for _, sc := range []storage.Scope{{EntityID: id, Resource: resource}, {EntityID: id, Resource: storage.DefaultResource}, {Resource: resource}, {}} {
			if cs, ok := found[sc]; ok {
				ls = fromConfigs(cs)
				break
			}
		}
		out[id] = ls
		l.limits.put(bucketID{id, resource}, ls)
	}
	return out, nil
}
