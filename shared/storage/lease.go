package storage

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Lease states as stored: the same words as the HTTP API's (httpapi.LeaseOpen…).
const (
	LeaseOpen       = "open"
	LeaseCommitted  = "committed"
	LeaseRolledBack = "rolled_back"
	// leaseRolledBackBefore is how earlier versions stored LeaseRolledBack; DecodeLease reads it
	// as LeaseRolledBack (leases live minutes, so such items are gone soon after an upgrade).
	leaseRolledBackBefore = "rolledback"
)

// LeaseLevel is one bucket a stored lease charged.
type LeaseLevel struct {
	EntityID string
	Limits   []LimitConfig
	Amounts  map[string]int64 // millitokens held, by limit name
}

// LeaseItem is a stored lease: what an acquire took, so that any process can adjust, commit or
// roll it back by id.
type LeaseItem struct {
	ID        string
	EntityID  string
	Resource  string
	State     string
	Levels    []LeaseLevel
	CreatedAt int64           // Unix ms
	ExpiresAt int64           // Unix ms; the item is gone (TTL) some time after
	Keys      map[string]bool // idempotency keys of the adjustments applied
}

const (
	attrLeaseState   = "state"
	attrLeaseLevels  = "levels"
	attrLeaseExpires = "expires_at"
	attrLeaseID      = "lease_id"
	attrSecret       = "secret"
	attrResource     = "resource"
	attrLeaseKeys    = "keys" // String Set: idempotency keys applied
	// amountAttr(i, name) holds the millitokens level i of a lease holds for a limit.
	amountPrefix = "a"
	// leaseTTLGrace keeps an expired lease item readable (as expired) a day before TTL deletes it.
	leaseTTLGraceSeconds = 24 * 3600
)

func amountAttr(level int, name string) string {
	return amountPrefix + strconv.Itoa(level) + "#" + name
}

// Lease ids come in two forms, both unguessable:
//
//   - 32 hex digits (128 random bits): a lease without a request id, kept at LEASE#{id};
//   - 64 hex digits, '-', 32 hex digits: a lease with a request id. The first part is the
//     SHA-256 of its entity, resource and request id, so a retried acquire lands on the same
//     item (the key reveals none of them); the second is 128 random bits the item keeps and a
//     load must present, so knowing a request id is not enough to reach its lease. One item
//     serves as both the lease and the idempotency record.

// LeaseRef returns what errors and logs show of a lease id (wire.LeaseRef): its first 8
// characters and "…", far too little to settle the lease.
func LeaseRef(id string) string { return wire.LeaseRef(id) }

// ErrBadLeaseID means a string is not a lease id.
var ErrBadLeaseID = errors.New("storage: malformed lease id")

// NewLeaseID returns the id of a new lease: random, or bound to requestID when it is set. The
// request's hash covers principal (the caller's identity, "" when none is known), so a request
// id names a lease only for the principal that made it.
func NewLeaseID(principal, entity, resource, requestID string) string {
	if requestID == "" {
		return randomHex()
	}
	return requestHash(principal, entity, resource, requestID) + "-" + randomHex()
}

func randomHex() string { return randid.Hex() }

func requestHash(principal, entity, resource, requestID string) string {
	h := requestHashBytes(principal, entity, resource, requestID)
	return hex.EncodeToString(h[:])
}

// requestHashBytes is the SHA-256 of a request: principal, entity, resource and request id.
func requestHashBytes(principal, entity, resource, requestID string) [sha256.Size]byte {
	key := entity + "\x00" + resource + "\x00" + requestID
	if principal != "" {
		key = "p\x00" + principal + "\x00" + key
	}
	return sha256.Sum256([]byte(key))
}

// parseLeaseID returns a lease's key and, for a request-bound lease, the secret its item keeps.
func parseLeaseID(id string) (map[string]types.AttributeValue, string, error) {
	if len(id) == 32 && isHex(id) {
		return key(PrefixLease+id, SKLease), "", nil
	}
	if len(id) == 64+1+32 && id[64] == '-' && isHex(id[:64]) && isHex(id[65:]) {
		return key(PrefixLease+"req#"+id[:64], SKLease), id[65:], nil
	}
	return nil, "", ErrBadLeaseID
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func ttlSeconds(expiresMs int64) int64 { return expiresMs/1000 + leaseTTLGraceSeconds }

// PutLease returns the transaction item that creates a lease (it must not exist yet). For a
// request-bound id, a failed condition means the request was acquired before: the
// ExtraConditionError carries that lease, decoded (Lease).
func (t *Table) PutLease(l LeaseItem) (Extra, error) {
	item, secret, err := parseLeaseID(l.ID)
	if err != nil {
		return Extra{}, err
	}
	if secret != "" {
		item[attrSecret] = s(secret)
	}
	item[attrLeaseID] = s(l.ID)
	item[attrEntityID] = s(l.EntityID)
	item[attrResource] = s(l.Resource)
	item[attrLeaseState] = s(l.State)
	item[attrCreated] = num(l.CreatedAt)
	item[attrLeaseExpires] = num(l.ExpiresAt)
	item[AttrTTL] = num(ttlSeconds(l.ExpiresAt))
	levels := make([]types.AttributeValue, 0, len(l.Levels))
	for i, lv := range l.Levels {
		levels = append(levels, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"entity_id": s(lv.EntityID), "limits": encodeLimits(lv.Limits),
		}})
		for name, x := range lv.Amounts {
			item[amountAttr(i, name)] = num(x)
		}
	}
	item[attrLeaseLevels] = &types.AttributeValueMemberL{Value: levels}
	return Extra{Put: &types.Put{
		TableName: aws.String(t.name), Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(PK)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}, nil
}

// LeaseUpdate is a change of a stored lease (UpdateLease).
type LeaseUpdate struct {
	Deltas []map[string]int64 // per level, millitokens added to the held amounts
	// Expect, when set, gives per level the exact amounts the lease must hold (an amount of 0
	// also matches an absent one).
	Expect []map[string]int64
	To     string // the new state, when set
	// Key, when set, is recorded in the lease on the condition that it is not there yet.
	Key string
}

// UpdateLease returns the transaction item that makes the change u to a lease; on the condition
// that it is open, not expired at now, holds exactly u.Expect (when given) or at least what
// negative deltas give back, and has not recorded u.Key.
func (t *Table) UpdateLease(id string, u LeaseUpdate, now int64) (Extra, error) {
	k, _, err := parseLeaseID(id)
	if err != nil {
		return Extra{}, err
	}
	deltas, expect, to := u.Deltas, u.Expect, u.To
	names := map[string]string{"#st": attrLeaseState, "#ex": attrLeaseExpires}
	values := map[string]types.AttributeValue{":open": s(LeaseOpen), ":now": num(now)}
	cond := []string{"#st = :open", "#ex > :now"}
	var add, set []string
	for i, d := range deltas {
		for name, x := range d {
			if x == 0 {
				continue
			}
			n, v := fmt.Sprintf("#a%d_%d", i, len(names)), fmt.Sprintf(":a%d_%d", i, len(values))
			names[n] = amountAttr(i, name)
			values[v] = num(x)
			add = append(add, n+" "+v)
			if x < 0 && expect == nil {
				g := v + "g"
				values[g] = num(-x)
				cond = append(cond, fmt.Sprintf("%s >= %s", n, g))
			}
		}
	}
	for i, m := range expect {
		for name, x := range m {
			n, v := fmt.Sprintf("#x%d_%d", i, len(names)), fmt.Sprintf(":x%d_%d", i, len(values))
			names[n], values[v] = amountAttr(i, name), num(x)
			if x == 0 {
				cond = append(cond, fmt.Sprintf("(attribute_not_exists(%s) OR %s = %s)", n, n, v))
			} else {
				cond = append(cond, n+" = "+v)
			}
		}
	}
	if u.Key != "" {
		names["#keys"] = attrLeaseKeys
		values[":key"], values[":keys"] = s(u.Key), &types.AttributeValueMemberSS{Value: []string{u.Key}}
		cond = append(cond, "NOT contains(#keys, :key)")
		add = append(add, "#keys :keys")
	}
	if to != "" {
		values[":to"] = s(to)
		set = append(set, "#st = :to")
	}
	var update []string
	if len(set) > 0 {
		update = append(update, "SET "+strings.Join(set, ", "))
	}
	if len(add) > 0 {
		update = append(update, "ADD "+strings.Join(add, ", "))
	}
	return Extra{Update: &types.Update{
		TableName: aws.String(t.name), Key: k,
		UpdateExpression:                    aws.String(strings.Join(update, " ")),
		ConditionExpression:                 aws.String(strings.Join(cond, " AND ")),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}, nil
}

// CommitLease marks an open, unexpired lease committed in one UpdateItem. A lease already
// committed stays so (nil). Otherwise it returns the lease as it is, with ErrLeaseState.
func (t *Table) CommitLease(ctx context.Context, id string, now int64) (*LeaseItem, error) {
	k, _, err := parseLeaseID(id)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", LeaseRef(id), ErrNotFound)
	}
	_, err = t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(t.name), Key: k,
		UpdateExpression:         aws.String("SET #st = :c"),
		ConditionExpression:      aws.String("(#st = :open OR #st = :c) AND #ex > :now"),
		ExpressionAttributeNames: map[string]string{"#st": attrLeaseState, "#ex": attrLeaseExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open": s(LeaseOpen), ":c": s(LeaseCommitted), ":now": num(now),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := asCCF(err); ok {
		if len(ccf.Item) == 0 {
			return nil, fmt.Errorf("lease %s: %w", LeaseRef(id), ErrNotFound)
		}
		it, err := DecodeLease(ccf.Item)
		if err != nil {
			return nil, err
		}
		return it, fmt.Errorf("lease %s: %w", LeaseRef(id), ErrLeaseState)
	}
	if err != nil {
		return nil, fmt.Errorf("commit lease %s: %w", LeaseRef(id), err)
	}
	return nil, nil
}

// ErrLeaseState means a lease was not in the state a write required.
var ErrLeaseState = errors.New("storage: lease state")

func asCCF(err error) (*types.ConditionalCheckFailedException, bool) {
	var c *types.ConditionalCheckFailedException
	return c, errors.As(err, &c)
}

// GetLease reads a lease (strongly consistent). It returns ErrNotFound for an id that is
// malformed, unknown, or whose secret part does not match.
func (t *Table) GetLease(ctx context.Context, id string) (*LeaseItem, error) {
	k, secret, err := parseLeaseID(id)
	if err != nil {
		return nil, fmt.Errorf("lease: %w: %w", ErrNotFound, err)
	}
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.name), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get lease %s: %w", LeaseRef(id), err)
	}
	if out.Item == nil || subtle.ConstantTimeCompare([]byte(strAttr(out.Item[attrSecret])), []byte(secret)) != 1 {
		return nil, fmt.Errorf("lease %s: %w", LeaseRef(id), ErrNotFound)
	}
	return DecodeLease(out.Item)
}

// DecodeLease decodes a lease item, strictly: an attribute of the wrong type is a
// *DecodeError.
func DecodeLease(item map[string]types.AttributeValue) (*LeaseItem, error) {
	var d itemDecoder
	l := &LeaseItem{
		ID: d.str(item, attrLeaseID), EntityID: d.str(item, attrEntityID), Resource: d.str(item, attrResource),
		State: d.str(item, attrLeaseState), CreatedAt: d.int(item, attrCreated), ExpiresAt: d.int(item, attrLeaseExpires),
	}
	if l.State == leaseRolledBackBefore {
		l.State = LeaseRolledBack
	}
	if ks := d.strSet(item, attrLeaseKeys); ks != nil {
		l.Keys = make(map[string]bool, len(ks))
		for _, k := range ks {
			l.Keys[k] = true
		}
	}
	for i, m := range d.maps(item, attrLeaseLevels) {
		limits, err := decodeLimits(m)
		if err != nil {
			d.fail(err)
		}
		lv := LeaseLevel{EntityID: d.str(m, "entity_id"), Limits: limits, Amounts: map[string]int64{}}
		for _, c := range lv.Limits {
			if x := d.int(item, amountAttr(i, c.Name)); x != 0 {
				lv.Amounts[c.Name] = x
			}
		}
		l.Levels = append(l.Levels, lv)
	}
	if d.err != nil {
		return nil, fmt.Errorf("storage: lease %s: %w", LeaseRef(l.ID), d.err)
	}
	return l, nil
}
