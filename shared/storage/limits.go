package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

// PutLimits stores the limits of a scope, replacing what was there.
func (t *Table) PutLimits(ctx context.Context, sc Scope, limits []LimitConfig, now int64) error {
	item := limitsKey(sc.EntityID, sc.Resource)
	item[attrLimits] = encodeLimits(limits)
	item[attrUpdated] = num(now)
	if _, err := t.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item}); err != nil {
		return fmt.Errorf("put limits %+v: %w", sc, err)
	}
	return nil
}

// GetLimits reads the limits of a scope (strongly consistent), or ErrNotFound.
func (t *Table) GetLimits(ctx context.Context, sc Scope) ([]LimitConfig, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: limitsKey(sc.EntityID, sc.Resource), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get limits %+v: %w", sc, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("limits %+v: %w", sc, ErrNotFound)
	}
	return decodeLimits(out.Item)
}

// DeleteLimits deletes the limits of a scope, or returns ErrNotFound.
func (t *Table) DeleteLimits(ctx context.Context, sc Scope) error {
	_, err := t.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.name), Key: limitsKey(sc.EntityID, sc.Resource),
		ConditionExpression: aws.String("attribute_exists(PK)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("limits %+v: %w", sc, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete limits %+v: %w", sc, err)
	}
	return nil
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

// backoff waits before retry attempt (0-based): 25 ms doubling, at most 1 s.
func backoff(ctx context.Context, attempt int) error {
	d := min(25*time.Millisecond<<attempt, time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
