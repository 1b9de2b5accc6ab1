package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/jitter"
)

// LimitConfig is a stored limit, in whole tokens and milliseconds.
type LimitConfig struct {
	Name           string
	Capacity       int64
	RefillAmount   int64
	RefillPeriodMs int64
}

// Scope names a set of stored limits: entity+resource, entity default (Resource =
// DefaultResource), resource default (EntityID = "") or system default (both "").
type Scope struct {
	EntityID string
	Resource string
}

const attrLimits = "limits"

func encodeLimits(ls []LimitConfig) types.AttributeValue {
	out := make([]types.AttributeValue, 0, len(ls))
	for _, l := range ls {
		out = append(out, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"name":             s(l.Name),
			"capacity":         num(l.Capacity),
			"refill_amount":    num(l.RefillAmount),
			"refill_period_ms": num(l.RefillPeriodMs),
		}})
	}
	return &types.AttributeValueMemberL{Value: out}
}

func decodeLimits(item map[string]types.AttributeValue) ([]LimitConfig, error) {
	var d itemDecoder
	var out []LimitConfig
	for _, m := range d.maps(item, attrLimits) {
		out = append(out, LimitConfig{
			Name:           d.str(m, "name"),
			Capacity:       d.int(m, "capacity"),
			RefillAmount:   d.int(m, "refill_amount"),
			RefillPeriodMs: d.int(m, "refill_period_ms"),
		})
	}
	if d.err != nil {
		return nil, fmt.Errorf("storage: stored limits: %w", d.err)
	}
	return out, nil
}

// LimitsItem is a stored set of limits with its admin version (see EntityItem.Version).
type LimitsItem struct {
	Limits    []LimitConfig
	UpdatedAt int64 // Unix ms
	Version   int64
}

func decodeLimitsItem(item map[string]types.AttributeValue) (*LimitsItem, error) {
	limits, err := decodeLimits(item)
	if err != nil {
		return nil, err
	}
	var d itemDecoder
	li := &LimitsItem{Limits: limits, UpdatedAt: d.int(item, attrUpdated), Version: d.int(item, attrVersion)}
	if d.err != nil {
		return nil, fmt.Errorf("storage: stored limits: %w", d.err)
	}
	return li, nil
}

// PutLimits stores the limits of a scope, replacing the item at version expect (NoItem: there
// must be none), at version expect+1 (1 for a new item) with updated_at now, and writes rec, in
// one transaction (with the entity's limits mark, for an entity's scope: see limitsWrite). It
// returns ErrStale (nothing written) when the item is not in the expected state, and nil when
// rec is already stored (an earlier attempt applied). With requireEntity, an entity's scope is
// written on the condition, checked in the same transaction, that the entity is stored
// (ErrEntityNotStored otherwise).
func (t *Table) PutLimits(ctx context.Context, sc Scope, limits []LimitConfig, now int64, expect Expect, rec *AuditRecord, requireEntity bool) error {
	item := limitsKey(sc.EntityID, sc.Resource)
	item[attrLimits] = encodeLimits(limits)
	item[attrUpdated] = num(now)
	item[attrVersion] = num(max(int64(expect), 0) + 1)
	names, values := map[string]string{}, map[string]types.AttributeValue{}
	cond := expect.condition(names, values)
	put := &types.Put{TableName: aws.String(t.name), Item: item, ConditionExpression: aws.String(cond)}
	if len(names) > 0 {
		put.ExpressionAttributeNames = names
	}
	if len(values) > 0 {
		put.ExpressionAttributeValues = values
	}
	items := []types.TransactWriteItem{{Put: put}}
	var check func([]types.CancellationReason) error
	if requireEntity && sc.EntityID != "" {
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(t.name), Key: entityKey(sc.EntityID), ConditionExpression: aws.String("attribute_exists(PK)"),
		}})
		check = func(reasons []types.CancellationReason) error {
			if aws.ToString(reasons[1].Code) == "ConditionalCheckFailed" {
				return fmt.Errorf("limits of entity %s: %w", sc.EntityID, ErrEntityNotStored)
			}
			return nil
		}
	}
	return t.limitsWrite(ctx, fmt.Sprintf("put limits %+v", sc), sc, items, rec, check)
}

// limitsWrite runs an audited write of a scope's limits. For an entity's scope the transaction
// also sets the change id on the entity's limits mark (item E#{entity} / #LIMITS, attribute
// lchg; no index keys, so no index write): an entity delete computed before this change fails
// its condition on the mark and reads again, so the delete's record lists exactly the limits
// it deletes. (The mark needs no entity: the library lets an entity that is not stored have
// limits, unless its writes require the entity, and a delete sweeps the mark with the
// partition.) check, when set, reads the cancellation reasons of items (see auditedWrite).
func (t *Table) limitsWrite(ctx context.Context, op string, sc Scope, items []types.TransactWriteItem, rec *AuditRecord,
	check func([]types.CancellationReason) error) error {
	if sc.EntityID != "" {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(t.name), Key: key(PrefixEntity+sc.EntityID, SKLimitsMark),
			UpdateExpression:          aws.String("SET #lc = :lc"),
			ExpressionAttributeNames:  map[string]string{"#lc": attrLimitsChange},
			ExpressionAttributeValues: map[string]types.AttributeValue{":lc": s(rec.ChangeID)},
		}})
	}
	return t.auditedWrite(ctx, op, items, rec, check)
}

// GetLimits reads the limits of a scope (strongly consistent), or ErrNotFound.
func (t *Table) GetLimits(ctx context.Context, sc Scope) ([]LimitConfig, error) {
	it, err := t.GetLimitsItem(ctx, sc)
	if err != nil {
		return nil, err
	}
	return it.Limits, nil
}

// GetLimitsItem reads the limits of a scope with their version (strongly consistent), or
// ErrNotFound.
func (t *Table) GetLimitsItem(ctx context.Context, sc Scope) (*LimitsItem, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: limitsKey(sc.EntityID, sc.Resource), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get limits %+v: %w", sc, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("limits %+v: %w", sc, ErrNotFound)
	}
	return decodeLimitsItem(out.Item)
}

// DeleteLimits deletes the limits of a scope stored at version expect and writes rec, in one
// transaction (with the entity's limits mark, for an entity's scope: see limitsWrite). It
// returns ErrStale (nothing deleted) when the item is gone or at another version, and nil when
// rec is already stored.
func (t *Table) DeleteLimits(ctx context.Context, sc Scope, expect Expect, rec *AuditRecord) error {
	names, values := map[string]string{}, map[string]types.AttributeValue{}
	del := &types.Delete{TableName: aws.String(t.name), Key: limitsKey(sc.EntityID, sc.Resource),
		ConditionExpression: aws.String(expect.condition(names, values)), ExpressionAttributeNames: names}
	if len(values) > 0 {
		del.ExpressionAttributeValues = values
	}
	return t.limitsWrite(ctx, fmt.Sprintf("delete limits %+v", sc), sc, []types.TransactWriteItem{{Delete: del}}, rec, nil)
}

// BatchGetLimits reads the limits of up to 100 scopes in one BatchGetItem (more only when
// DynamoDB leaves keys unprocessed). Scopes with no stored limits are absent from the result.
func (t *Table) BatchGetLimits(ctx context.Context, scopes []Scope) (map[Scope][]LimitConfig, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(scopes))
	byKey := map[string]Scope{}
	for _, sc := range scopes {
		k := limitsKey(sc.EntityID, sc.Resource)
		id := strAttr(k[AttrPK]) + "\x00" + strAttr(k[AttrSK])
		if _, dup := byKey[id]; dup {
			continue
		}
		byKey[id] = sc
		keys = append(keys, k)
	}
	out := map[Scope][]LimitConfig{}
	for attempt := 0; len(keys) > 0; attempt++ {
		res, err := t.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{t.name: {Keys: keys}},
		})
		if err != nil {
			return nil, fmt.Errorf("batch get limits: %w", err)
		}
		for _, it := range res.Responses[t.name] {
			sc := byKey[strAttr(it[AttrPK])+"\x00"+strAttr(it[AttrSK])]
			if out[sc], err = decodeLimits(it); err != nil {
				return nil, err
			}
		}
		keys = res.UnprocessedKeys[t.name].Keys
		if len(keys) > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// backoff waits before asking again (attempt, 0-based) for what DynamoDB left unprocessed: full
// jitter, 25 ms doubling to at most 1 s.
func backoff(ctx context.Context, attempt int) error {
	return jitter.Backoff{Base: 25 * time.Millisecond, Max: time.Second}.Wait(ctx, attempt)
}
