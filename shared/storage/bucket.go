package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Attribute names of a bucket item. Per limit n: AttrState+n, AttrParams+n, AttrConsumed+n.
const (
	AttrState     = "e#"  // Number: the limit's state E (tokenbucket)
	AttrParams    = "k#"  // String "C/A/P": the parameters E is expressed in
	AttrConsumed  = "u#"  // Number: net millitokens consumed, ever
	AttrAcquires  = "acq" // Number: net acquires (+1 per acquire, −1 per rollback)
	AttrUpdatedAt = "ts"  // Number: Unix ms of the last write, by the limiter's clock
	// AttrVersion is the item's version (Number): every write raises it by one, in the same
	// update, so the usage aggregator orders an item's stream records by it rather than by
	// stream sequence numbers. A new item starts at its write's time in ns (Now·10^6) + 1, so an
	// item deleted and written again later starts above every version the old one reached
	// (which would need 10^6 writes per ms of its life to catch up).
	AttrVersion = "v"
	// AttrWriteID+lane (String) is the id of the last write a writer's lane made to the item:
	// "{unix ms, base 36}.{anything}". A write carries its id under the condition that its lane's id
	// differs, so a resend of an applied write fails its condition and is recognised.
	AttrWriteID = "w#"
)

// VersionBase is the factor from a new item's write time (Unix ms) to its first version − 1.
const VersionBase = 1_000_000

// versionBase returns a new item's first version − 1 for a write at now (Unix ms): now in ns,
// or 0 for a time before 1970 or after 2262, which 64 bits cannot scale.
func versionBase(now int64) int64 {
	if now < 0 || now > (math.MaxInt64-1)/VersionBase {
		return 0
	}
	return now * VersionBase
}

// LimitState is one limit as stored in a bucket item.
type LimitState struct {
	Params tokenbucket.Params
	State  tokenbucket.Int128 // E
	// Consumed is the net millitokens consumed, ever. It is read in 128 bits: a running total
	// passes 2^63 after 9.2e15 tokens (9,224 adjustments of the largest amount), and DynamoDB
	// keeps it exactly up to 38 digits.
	Consumed tokenbucket.Int128
}

// Bucket is a bucket item: every limit of one entity+resource.
type Bucket struct {
	EntityID  string
	Resource  string
	Limits    map[string]LimitState // by limit name; a limit never written is absent
	Acquires  int64
	UpdatedAt int64 // Unix ms
	Version   int64 // AttrVersion
	// Lanes are the write ids of the item's writer lanes, by lane (see AttrWriteID). The item a
	// successful write returns is decoded without them.
	Lanes map[string]string
	// Leases are the in-item leases (see AttrInlineLease), by key; a Partial bucket has none.
	Leases map[string]InlineLease
	// LanesAt is when (Unix ms, the reader's clock) Lanes were read from the item (0: they
	// were not); set by the limiter, which keeps buckets as predictions.
	LanesAt int64
	// LeasesAt is when (Unix ms, the reader's clock) Leases were read from the item; set by
	// the limiter, which keeps buckets as predictions.
	LeasesAt int64
	// LeaseCount is the item's AttrInlineCount; a Partial bucket has it only when the write
	// changed it.
	LeaseCount int64
	// LeaseCountSet is true when a Partial bucket has LeaseCount.
	LeaseCountSet bool
	// Forwarded is the item's AttrForwarded (0 when absent; a Partial bucket has none).
	Forwarded int64
	// Partial is true for what a successful single write returns: only the limits it wrote
	// (with their params and state after it; Consumed only where the write added to it), and
	// Acquires only when it added to them.
	Partial bool
}

// LimitsOrNil returns b's limits, nil for a nil bucket.
func (b *Bucket) LimitsOrNil() map[string]LimitState {
	if b == nil {
		return nil
	}
	return b.Limits
}

// WriteIDTime returns the Unix ms a write id was made at (0 when it is malformed).
func WriteIDTime(id string) int64 {
	ms, _, _ := strings.Cut(id, ".")
	v, err := strconv.ParseInt(ms, 36, 64)
	if err != nil {
		return 0
	}
	return v
}

// WriteMode says how a LimitWrite changes a limit's state E and on which condition.
type WriteMode int

const (
	// Add adds Value to E, on the condition that the stored params equal Params, and
	// Min ≤ E when Min is set, and E ≤ Max when Max is set. A take from a bucket that is not
	// full sets Min to the floor and Max to the ceiling; a refund sets neither.
	Add WriteMode = iota
	// SetFull sets E to Value and the params to Params, on the condition that the limit is
	// absent, or has params equal to Params and E ≤ Floor (the bucket is full).
	SetFull
	// Replace sets E to Value and the params to Params, on the condition that E and the params
	// still equal Expect: a re-base after the limit's parameters changed.
	Replace
)

// LimitWrite is the change of one limit in a BucketWrite.
type LimitWrite struct {
	Name     string
	Mode     WriteMode
	Params   tokenbucket.Params
	Value    tokenbucket.Int128  // the amount added (Add) or the new state (SetFull, Replace)
	Min, Max *tokenbucket.Int128 // Add: optional bounds on E before the write
	Floor    tokenbucket.Int128  // SetFull: E must be at or below it
	Expect   LimitState          // Replace: the state and params the write replaces
	Consumed int64               // millitokens added to the limit's consumed counter
}

// BucketWrite is one conditional change of a bucket item.
type BucketWrite struct {
	EntityID string
	Resource string
	Limits   []LimitWrite
	Acquires int64 // added to the item's acquire counter
	Now      int64 // Unix ms, stored as the time of the change
	// Create also writes the item's GSI2 keys; set it when the item may not exist yet.
	Create bool
	// Lane and WriteID, when set, make the write idempotent: the item records WriteID as its
	// lane's last write, on the condition that the lane's last write is another one. A lane has
	// at most one write in flight, so a resend of an applied write (by the SDK after a lost
	// response, or by the caller) fails its condition with WriteID in the item and is reported
	// as applied (WriteBuckets), never applied twice.
	Lane, WriteID string
	// Prune removes other lanes' write ids (stale ones), each on the condition that it is
	// still the value given, so the item does not grow with every writer that ever wrote it.
	Prune map[string]string
	// Lease, when set, is the change of an in-item lease the write makes too (see LeaseOp).
	Lease *LeaseOp
	// ReturnAll makes a single write return the whole item after it (ALL_NEW: lanes and
	// in-item leases included) instead of what it wrote. Its answer is larger to decode, so
	// writers ask for it only when they need to learn the item's lanes.
	ReturnAll bool
}

// Applied reports whether the item cur already holds w's write (a resend of an applied write).
func (w BucketWrite) Applied(cur *Bucket) bool {
	return w.WriteID != "" && cur != nil && cur.Lanes[w.Lane] == w.WriteID
}

// FailedWrite is a write whose condition did not hold.
type FailedWrite struct {
	Index   int     // position in the writes given to WriteBuckets
	Current *Bucket // the item as it was; nil when it does not exist
}

// ConditionFailedError reports the writes whose conditions failed, with the current items.
// Nothing was written.
type ConditionFailedError struct {
	Failed []FailedWrite
}

// Error counts the failed writes.
func (e *ConditionFailedError) Error() string {
	return fmt.Sprintf("storage: condition failed on %d bucket write(s)", len(e.Failed))
}

// Extra is one more item written in the same transaction as bucket writes, such as a lease.
type Extra = types.TransactWriteItem

// WriteOptions are optional parts of WriteBuckets.
type WriteOptions struct {
	// Token makes the write an idempotent transaction for ten minutes (ClientRequestToken), even
	// for a single bucket.
	Token string
	// Extra items are written in the same transaction; a failed condition on one of them is
	// returned as *ExtraConditionError.
	Extra []Extra
}

// ExtraConditionError reports that the condition of an Extra item failed.
type ExtraConditionError struct {
	Index int        // position in WriteOptions.Extra
	Lease *LeaseItem // the lease item as it was, decoded; nil when it did not exist
}

// Error names the extra item whose condition failed.
func (e *ExtraConditionError) Error() string {
	return fmt.Sprintf("storage: condition failed on extra item %d", e.Index)
}

// WriteBuckets applies writes atomically: all or none. One write without extras or token is one
// UpdateItem, whose result is returned: the limits it wrote as they are after it (a Partial
// bucket: UPDATED_NEW, so the answer carries neither the limits it did not write nor the
// item's lanes), or with ReturnAll the whole item; otherwise they are one TransactWriteItems, for which the returned slice is nil. A failed condition returns
// *ConditionFailedError with the current items, at no read cost.
func (t *Table) WriteBuckets(ctx context.Context, writes []BucketWrite, opts WriteOptions) ([]*Bucket, error) {
	if len(writes) == 0 && len(opts.Extra) == 0 {
		return nil, errors.New("storage: nothing to write")
	}
	if len(writes) == 1 && len(opts.Extra) == 0 && opts.Token == "" {
		u := t.bucketUpdate(writes[0])
		rv := types.ReturnValueUpdatedNew
		if writes[0].ReturnAll {
			rv = types.ReturnValueAllNew
		}
		out, err := t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues:           u.ExpressionAttributeValues,
			ReturnValues:                        rv,
			ReturnValuesOnConditionCheckFailure: u.ReturnValuesOnConditionCheckFailure,
		})
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				cur, err := decodeBucketOrNil(ccf.Item)
				if err != nil {
					return nil, err
				}
				if writes[0].Applied(cur) {
					return []*Bucket{cur}, nil // a resend: the item holds the write and what followed
				}
				return nil, &ConditionFailedError{Failed: []FailedWrite{{Index: 0, Current: cur}}}
			}
			var tce *types.TransactionConflictException
			if errors.As(err, &tce) {
				return nil, fmt.Errorf("update bucket %s/%s: %w: %w", writes[0].EntityID, writes[0].Resource, ErrConflict, err)
			}
			return nil, fmt.Errorf("update bucket %s/%s: %w", writes[0].EntityID, writes[0].Resource, err)
		}
		decode := decodeUpdated
		if writes[0].ReturnAll {
			decode = func(item map[string]types.AttributeValue, _ BucketWrite) (*Bucket, error) { return decodeBucket(item) }
		}
		b, err := decode(out.Attributes, writes[0])
		if err != nil {
			return nil, err
		}
		return []*Bucket{b}, nil
	}
	items := make([]types.TransactWriteItem, 0, len(writes)+len(opts.Extra))
	for _, w := range writes {
		items = append(items, types.TransactWriteItem{Update: t.bucketUpdate(w)})
	}
	items = append(items, opts.Extra...)
	return t.transact(ctx, items, opts.Token, writes)
}

// transact runs a transaction and maps its cancellation: the first len(writes) items are bucket
// updates, the rest extras. A transaction cancelled because a bucket already holds its write id
// was applied before (a resend): it returns the current items of the buckets whose reasons
// carry one (nil entries otherwise) and no error. A successful transaction returns nil images.
func (t *Table) transact(ctx context.Context, items []types.TransactWriteItem, token string, writes []BucketWrite) ([]*Bucket, error) {
	nBuckets := len(writes)
	in := &dynamodb.TransactWriteItemsInput{TransactItems: items}
	if token != "" {
		in.ClientRequestToken = aws.String(token)
	}
	_, err := t.client.TransactWriteItems(ctx, in)
	if err == nil {
		return nil, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		var ipm *types.IdempotentParameterMismatchException
		if errors.As(err, &ipm) {
			return nil, fmt.Errorf("transact write: token reused for another request: %w", err)
		}
		return nil, fmt.Errorf("transact write: %w", err)
	}
	var failed []FailedWrite
	var extra *ExtraConditionError
	conflict, applied := false, false
	images := make([]*Bucket, nBuckets)
	for i, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			if i >= nBuckets {
				if extra == nil {
					extra = &ExtraConditionError{Index: i - nBuckets}
					if len(r.Item) > 0 {
						lease, derr := DecodeLease(r.Item)
						if derr != nil {
							return nil, derr
						}
						extra.Lease = lease
					}
				}
				continue
			}
			cur, derr := decodeBucketOrNil(r.Item)
			if derr != nil {
				return nil, derr
			}
			images[i] = cur
			if writes[i].Applied(cur) {
				applied = true
				continue
			}
			failed = append(failed, FailedWrite{Index: i, Current: cur})
		case "TransactionConflict":
			conflict = true
		}
	}
	switch {
	case applied:
		return images, nil
	case extra != nil:
		return nil, extra
	case len(failed) > 0:
		return nil, &ConditionFailedError{Failed: failed}
	case conflict:
		return nil, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return nil, fmt.Errorf("transact write: %w", err)
}

// GetBucket reads a bucket item with a strongly consistent read. An item that does not exist is
// returned as a bucket with no limits.
func (t *Table) GetBucket(ctx context.Context, entity, resource string) (*Bucket, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(t.name),
		Key:            bucketKey(entity, resource),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get bucket %s/%s: %w", entity, resource, err)
	}
	if out.Item == nil {
		return &Bucket{EntityID: entity, Resource: resource, Limits: map[string]LimitState{}}, nil
	}
	return decodeBucket(out.Item)
}

func n(v string) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: v} }

func num(v int64) *types.AttributeValueMemberN { return n(strconv.FormatInt(v, 10)) }

// FormatParams encodes params as stored in a bucket item: "C/A/P".
func FormatParams(p tokenbucket.Params) string {
	return strconv.FormatInt(p.Capacity, 10) + "/" + strconv.FormatInt(p.Amount, 10) + "/" + strconv.FormatInt(p.Period, 10)
}

// ParseParams decodes FormatParams.
func ParseParams(v string) (tokenbucket.Params, error) {
	parts := strings.Split(v, "/")
	if len(parts) != 3 {
		return tokenbucket.Params{}, fmt.Errorf("storage: bad params %q", v)
	}
	var out [3]int64
	for i, p := range parts {
		x, err := strconv.ParseInt(p, 10, 64)
		if err != nil || x <= 0 {
			return tokenbucket.Params{}, fmt.Errorf("storage: bad params %q", v)
		}
		out[i] = x
	}
	return tokenbucket.Params{Capacity: out[0], Amount: out[1], Period: out[2]}, nil
}

// bucketUpdate returns the conditional update of one bucket write; a failed condition returns
// the item as it was.
func (t *Table) bucketUpdate(w BucketWrite) *types.Update {
	names := map[string]string{"#ts": AttrUpdatedAt, "#ver": AttrVersion}
	values := map[string]types.AttributeValue{":ts": num(w.Now), ":ver0": num(versionBase(w.Now)), ":one": num(1)}
	set := []string{"#ts = :ts", "#ver = if_not_exists(#ver, :ver0) + :one"}
	var add, cond []string
	for i, l := range w.Limits {
		e, k, u := fmt.Sprintf("#e%d", i), fmt.Sprintf("#k%d", i), fmt.Sprintf("#u%d", i)
		names[e], names[k] = AttrState+l.Name, AttrParams+l.Name
		v, pk := fmt.Sprintf(":v%d", i), fmt.Sprintf(":k%d", i)
		values[v], values[pk] = n(l.Value.String()), s(FormatParams(l.Params))
		switch l.Mode {
		case Add:
			add = append(add, e+" "+v)
			c := []string{k + " = " + pk}
			if l.Min != nil {
				values[fmt.Sprintf(":min%d", i)] = n(l.Min.String())
				c = append(c, fmt.Sprintf("%s >= :min%d", e, i))
			}
			if l.Max != nil {
				values[fmt.Sprintf(":max%d", i)] = n(l.Max.String())
				c = append(c, fmt.Sprintf("%s <= :max%d", e, i))
			}
			cond = append(cond, strings.Join(c, " AND "))
		case SetFull:
			set = append(set, e+" = "+v, k+" = "+pk)
			values[fmt.Sprintf(":f%d", i)] = n(l.Floor.String())
			cond = append(cond, fmt.Sprintf("(attribute_not_exists(%s) OR (%s = %s AND %s <= :f%d))", e, k, pk, e, i))
		case Replace:
			set = append(set, e+" = "+v, k+" = "+pk)
			values[fmt.Sprintf(":xe%d", i)] = n(l.Expect.State.String())
			values[fmt.Sprintf(":xk%d", i)] = s(FormatParams(l.Expect.Params))
			cond = append(cond, fmt.Sprintf("%s = :xe%d AND %s = :xk%d", e, i, k, i))
		}
		if l.Consumed != 0 {
			names[u] = AttrConsumed + l.Name
			values[fmt.Sprintf(":c%d", i)] = num(l.Consumed)
			add = append(add, fmt.Sprintf("%s :c%d", u, i))
		}
	}
	if w.Acquires != 0 {
		names["#acq"] = AttrAcquires
		values[":acq"] = num(w.Acquires)
		add = append(add, "#acq :acq")
	}
	if w.WriteID != "" {
		names["#w"], values[":w"] = AttrWriteID+w.Lane, s(w.WriteID)
		set = append(set, "#w = :w")
		cond = append(cond, "(attribute_not_exists(#w) OR #w <> :w)")
	}
	var remove []string
	for i, lane := range slices.Sorted(maps.Keys(w.Prune)) {
		pn, pv := fmt.Sprintf("#p%d", i), fmt.Sprintf(":p%d", i)
		names[pn], values[pv] = AttrWriteID+lane, s(w.Prune[lane])
		remove = append(remove, pn)
		cond = append(cond, pn+" = "+pv)
	}
	if w.Lease != nil {
		leaseOpUpdate(w.Lease, w.Now, names, values, &set, &add, &remove, &cond)
	}
	if w.Create {
		names["#g2pk"], names["#g2sk"] = AttrGSI2PK, AttrGSI2SK
		values[":g2pk"], values[":g2sk"] = s(PrefixResource+w.Resource), s(PrefixBucket+w.EntityID)
		set = append(set, "#g2pk = :g2pk", "#g2sk = :g2sk")
	}
	update := "SET " + strings.Join(set, ", ")
	if len(add) > 0 {
		update += " ADD " + strings.Join(add, ", ")
	}
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	out := &types.Update{
		TableName: aws.String(t.name), Key: bucketKey(w.EntityID, w.Resource), UpdateExpression: aws.String(update),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(cond) > 0 {
		out.ConditionExpression = aws.String(strings.Join(cond, " AND "))
	}
	return out
}

// decodeBucketOrNil decodes the item a failed condition returned: nil when there was none.
func decodeBucketOrNil(item map[string]types.AttributeValue) (*Bucket, error) {
	if len(item) == 0 {
		return nil, nil
	}
	return decodeBucket(item)
}

// decodeUpdated decodes the UPDATED_NEW answer to the write w.
func decodeUpdated(item map[string]types.AttributeValue, w BucketWrite) (*Bucket, error) {
	var d itemDecoder
	b := &Bucket{EntityID: w.EntityID, Resource: w.Resource, Limits: make(map[string]LimitState, len(w.Limits)), Partial: true,
		Acquires: d.int(item, AttrAcquires), UpdatedAt: d.int(item, AttrUpdatedAt), Version: d.int(item, AttrVersion),
		LeaseCount: d.int(item, AttrInlineCount)}
	if d.err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", w.EntityID, w.Resource, d.err)
	}
	_, b.LeaseCountSet = item[AttrInlineCount]
	for _, lw := range w.Limits {
		nv, ok := item[AttrState+lw.Name].(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("storage: bucket %s/%s: the write's answer lacks %s", w.EntityID, w.Resource, AttrState+lw.Name)
		}
		e, err := tokenbucket.ParseInt128(nv.Value)
		if err != nil {
			return nil, fmt.Errorf("storage: bucket %s/%s: %s: %w", w.EntityID, w.Resource, lw.Name, err)
		}
		u, err := Int128Attr(item, AttrConsumed+lw.Name)
		if err != nil {
			return nil, fmt.Errorf("storage: bucket %s/%s: %w", w.EntityID, w.Resource, err)
		}
		b.Limits[lw.Name] = LimitState{Params: lw.Params, State: e, Consumed: u}
	}
	return b, nil
}

// decodeBucket decodes a bucket item, its lanes' write ids included.
func decodeBucket(item map[string]types.AttributeValue) (*Bucket, error) {
	b := &Bucket{Limits: map[string]LimitState{}}
	if pk, ok := item[AttrPK].(*types.AttributeValueMemberS); ok {
		b.EntityID = strings.TrimPrefix(pk.Value, PrefixBucket)
	}
	if sk, ok := item[AttrSK].(*types.AttributeValueMemberS); ok {
		b.Resource = strings.TrimPrefix(sk.Value, PrefixBucket)
	}
	var err error
	if b.Acquires, err = Int64Attr(item, AttrAcquires); err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
	}
	if b.UpdatedAt, err = Int64Attr(item, AttrUpdatedAt); err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
	}
	if b.Version, err = Int64Attr(item, AttrVersion); err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
	}
	if b.LeaseCount, err = Int64Attr(item, AttrInlineCount); err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
	}
	if b.Forwarded, err = Int64Attr(item, AttrForwarded); err != nil {
		return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
	}
	for name, av := range item {
		if key, ok := strings.CutPrefix(name, AttrInlineLease); ok {
			l, err := decodeInline(name, av)
			if err != nil {
				return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
			}
			if b.Leases == nil {
				b.Leases = map[string]InlineLease{}
			}
			b.Leases[key] = l
			continue
		}
		if lane, ok := strings.CutPrefix(name, AttrWriteID); ok {
			if b.Lanes == nil {
				b.Lanes = map[string]string{}
			}
			var d itemDecoder
			if b.Lanes[lane] = d.str(item, name); d.err != nil {
				return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, d.err)
			}
			continue
		}
		limit, ok := strings.CutPrefix(name, AttrState)
		if !ok {
			continue
		}
		nv, ok := av.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("storage: bucket %s/%s: %s is not a number", b.EntityID, b.Resource, name)
		}
		e, err := tokenbucket.ParseInt128(nv.Value)
		if err != nil {
			return nil, fmt.Errorf("storage: bucket %s/%s: %s: %w", b.EntityID, b.Resource, name, err)
		}
		kv, _ := item[AttrParams+limit].(*types.AttributeValueMemberS)
		if kv == nil {
			return nil, fmt.Errorf("storage: bucket %s/%s: limit %s has no params", b.EntityID, b.Resource, limit)
		}
		p, err := ParseParams(kv.Value)
		if err != nil {
			return nil, err
		}
		u, err := Int128Attr(item, AttrConsumed+limit)
		if err != nil {
			return nil, fmt.Errorf("storage: bucket %s/%s: %w", b.EntityID, b.Resource, err)
		}
		b.Limits[limit] = LimitState{Params: p, State: e, Consumed: u}
	}
	return b, nil
}
