package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Errors of the entity hierarchy, testable with errors.Is.
var (
	// ErrParentNotFound means a child names a parent that does not exist.
	ErrParentNotFound = errors.New("storage: parent entity not found")
	// ErrParentIsChild means a child names a parent that has a parent itself: the hierarchy has
	// two levels.
	ErrParentIsChild = errors.New("storage: parent entity is itself a child")
	// ErrHasChildren means an entity with children cannot be deleted.
	ErrHasChildren = errors.New("storage: entity has children")
)

// EntityItem is a stored entity.
type EntityItem struct {
	ID        string
	Name      string
	ParentID  string // "" for a root entity
	Cascade   bool
	Metadata  map[string]string
	Children  int64 // number of children, kept by CreateEntity and DeleteEntity
	CreatedAt int64 // Unix ms
	UpdatedAt int64 // Unix ms
	// Version counts audited changes: 1 at creation, +1 per update (0 for an entity stored
	// before auditing). Conditions on it make a change exact under concurrent admins.
	Version int64
	// LimitsChange is the change id of the last change of the entity's stored limits ("" if
	// none), from its limits mark (ReadEntityPartition fills it): a delete is conditioned on
	// it, so that it knows every limit it deletes.
	LimitsChange string
}

const (
	attrEntityID = "entity_id"
	attrName     = "name"
	attrParent   = "parent_id"
	attrCascade  = "cascade"
	attrMetadata = "metadata"
	attrChildren = "children"
	attrCreated  = "created_at"
	attrUpdated  = "updated_at"
)

func encodeEntity(e EntityItem) map[string]types.AttributeValue {
	item := entityKey(e.ID)
	item[attrEntityID] = s(e.ID)
	item[attrName] = s(e.Name)
	item[attrCascade] = &types.AttributeValueMemberBOOL{Value: e.Cascade}
	item[attrMetadata] = encodeStringMap(e.Metadata)
	item[attrChildren] = num(e.Children)
	item[attrCreated] = num(e.CreatedAt)
	item[attrUpdated] = num(e.UpdatedAt)
	if e.Version > 0 {
		item[attrVersion] = num(e.Version)
	}
	if e.ParentID != "" {
		item[attrParent] = s(e.ParentID)
		item[AttrGSI1PK] = s(PrefixParent + e.ParentID)
		item[AttrGSI1SK] = s(PrefixEntity + e.ID)
	}
	return item
}

func encodeStringMap(m map[string]string) types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = s(v)
	}
	return &types.AttributeValueMemberM{Value: out}
}

func strAttr(av types.AttributeValue) string {
	if v, ok := av.(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func decodeEntity(item map[string]types.AttributeValue) (*EntityItem, error) {
	var d itemDecoder
	e := &EntityItem{
		ID:        d.str(item, attrEntityID),
		Name:      d.str(item, attrName),
		ParentID:  d.str(item, attrParent),
		Children:  d.int(item, attrChildren),
		CreatedAt: d.int(item, attrCreated),
		UpdatedAt: d.int(item, attrUpdated),
		Version:   d.int(item, attrVersion),
		Cascade:   d.bool(item, attrCascade),
		Metadata:  d.strMap(item, attrMetadata),
	}
	if d.err != nil {
		return nil, fmt.Errorf("storage: entity %s: %w", e.ID, d.err)
	}
	return e, nil
}

// CreateEntity stores a new entity (version 1) and its audit record in one transaction. It
// returns ErrExists when the id is taken. A child's transaction also checks that its parent
// exists and is a root (ErrParentNotFound, ErrParentIsChild) and adds one to the parent's child
// count, so a parent can never be deleted while it has children. When rec is already stored
// (an earlier attempt of this change applied and its answer was lost) it returns nil.
func (t *Table) CreateEntity(ctx context.Context, e EntityItem, rec *AuditRecord) error {
	e.Children, e.Version = 0, 1
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(t.name), Item: encodeEntity(e), ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}}}
	if e.ParentID != "" {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                           aws.String(t.name),
			Key:                                 entityKey(e.ParentID),
			UpdateExpression:                    aws.String("ADD #c :one"),
			ConditionExpression:                 aws.String("attribute_exists(PK) AND attribute_not_exists(#p)"),
			ExpressionAttributeNames:            map[string]string{"#c": attrChildren, "#p": attrParent},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":one": num(1)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	return t.auditedWrite(ctx, "create entity "+e.ID, items, rec, func(reasons []types.CancellationReason) error {
		switch {
		case aws.ToString(reasons[0].Code) == "ConditionalCheckFailed":
			return fmt.Errorf("entity %s: %w", e.ID, ErrExists)
		case e.ParentID != "" && aws.ToString(reasons[1].Code) == "ConditionalCheckFailed":
			if len(reasons[1].Item) == 0 {
				return fmt.Errorf("entity %s: %w: %s", e.ID, ErrParentNotFound, e.ParentID)
			}
			return fmt.Errorf("entity %s: %w: %s", e.ID, ErrParentIsChild, e.ParentID)
		}
		return nil
	})
}

// GetEntity reads an entity (strongly consistent). It returns ErrNotFound when there is none.
func (t *Table) GetEntity(ctx context.Context, id string) (*EntityItem, error) {
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(t.name), Key: entityKey(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get entity %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("entity %s: %w", id, ErrNotFound)
	}
	return decodeEntity(out.Item)
}

// UpdateEntity replaces the name, cascade default and metadata of the entity stored at
// version expect (the parent is fixed at creation), sets its updated_at to e.UpdatedAt and its
// version to expect+1, and writes rec, in one transaction. It returns ErrStale (nothing
// written) when the entity is gone or at another version, and nil when rec is already stored.
func (t *Table) UpdateEntity(ctx context.Context, e EntityItem, expect Expect, rec *AuditRecord) error {
	names := map[string]string{"#n": attrName, "#c": attrCascade, "#m": attrMetadata, "#u": attrUpdated}
	values := map[string]types.AttributeValue{
		":n": s(e.Name), ":c": &types.AttributeValueMemberBOOL{Value: e.Cascade},
		":m": encodeStringMap(e.Metadata), ":u": num(e.UpdatedAt), ":next": num(int64(expect) + 1),
	}
	cond := expect.condition(names, values)
	names["#ver"] = attrVersion
	return t.auditedWrite(ctx, "update entity "+e.ID, []types.TransactWriteItem{{Update: &types.Update{
		TableName:                 aws.String(t.name),
		Key:                       entityKey(e.ID),
		UpdateExpression:          aws.String("SET #n = :n, #c = :c, #m = :m, #u = :u, #ver = :next"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}}}, rec, nil)
}

// GetEntityWithLimits reads an entity and its stored limits (entity+resource and entity
// default, by resource) in one strongly consistent Query of its partition. It returns
// ErrNotFound when the entity does not exist.
func (t *Table) GetEntityWithLimits(ctx context.Context, id string) (*EntityItem, map[string]*LimitsItem, error) {
	e, limits, err := t.ReadEntityPartition(ctx, id)
	if err == nil && e == nil {
		err = fmt.Errorf("entity %s: %w", id, ErrNotFound)
	}
	return e, limits, err
}

// ReadEntityPartition reads an entity's partition in one strongly consistent Query: the entity
// (nil when it is not stored) and its stored limits by resource (DefaultResource: its default).
func (t *Table) ReadEntityPartition(ctx context.Context, id string) (*EntityItem, map[string]*LimitsItem, error) {
	p := dynamodb.NewQueryPaginator(t.client, &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(PrefixEntity + id)},
		ConsistentRead:            aws.Bool(true),
	})
	var e *EntityItem
	limits := map[string]*LimitsItem{}
	mark := ""
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("read entity %s: %w", id, err)
		}
		for _, it := range page.Items {
			switch sk := strAttr(it[AttrSK]); {
			case sk == SKMeta:
				if e, err = decodeEntity(it); err != nil {
					return nil, nil, err
				}
			case sk == SKLimitsMark:
				mark = strAttr(it[attrLimitsChange])
			case len(sk) > len(PrefixLimits) && sk[:len(PrefixLimits)] == PrefixLimits:
				if limits[sk[len(PrefixLimits):]], err = decodeLimitsItem(it); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	if e != nil {
		e.LimitsChange = mark
	}
	return e, limits, nil
}

// DeleteEntity deletes the entity e as read (at version Expect(e.Version), its limits last
// changed by e.LimitsChange) with its audit record, then its stored limits and buckets. It
// returns ErrHasChildren, deleting nothing, when the entity has children, and ErrStale (nothing
// deleted) when it is gone or it or its limits changed since it was read. The entity item goes first (in one transaction with its parent's child count and
// rec); its limits and buckets follow, so a failure part way leaves only items no entity refers
// to, and a retry of the same change (rec already stored) finishes the sweep. Usage snapshots
// are kept until their TTL: they are the billing record.
func (t *Table) DeleteEntity(ctx context.Context, e *EntityItem, rec *AuditRecord) error {
	if e.Children > 0 {
		return fmt.Errorf("entity %s: %w", e.ID, ErrHasChildren)
	}
	names := map[string]string{"#c": attrChildren}
	values := map[string]types.AttributeValue{":zero": num(0)}
	cond := Expect(e.Version).condition(names, values) + " AND (attribute_not_exists(#c) OR #c = :zero)"
	items := []types.TransactWriteItem{{Delete: &types.Delete{
		TableName: aws.String(t.name), Key: entityKey(e.ID), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}}
	// The limits as read: no limits change since (the mark is the same, or still absent). The
	// mark goes with the entity (a delete of an absent item under attribute_not_exists is a
	// no-op), which needs no permission beyond the admin's DeleteItem.
	mark := &types.Delete{TableName: aws.String(t.name), Key: key(PrefixEntity+e.ID, SKLimitsMark),
		ConditionExpression: aws.String("attribute_not_exists(PK)")}
	if e.LimitsChange != "" {
		mark.ConditionExpression = aws.String("#lc = :lc")
		mark.ExpressionAttributeNames = map[string]string{"#lc": attrLimitsChange}
		mark.ExpressionAttributeValues = map[string]types.AttributeValue{":lc": s(e.LimitsChange)}
	}
	items = append(items, types.TransactWriteItem{Delete: mark})
	if e.ParentID != "" {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(t.name),
			Key:                       entityKey(e.ParentID),
			UpdateExpression:          aws.String("ADD #c :minus"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeNames:  map[string]string{"#c": attrChildren},
			ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1)},
		}})
	}
	err := t.auditedWrite(ctx, "delete entity "+e.ID, items, rec, func(reasons []types.CancellationReason) error {
		if aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" && len(reasons[0].Item) > 0 {
			cur, err := decodeEntity(reasons[0].Item)
			if err != nil {
				return err
			}
			if cur.Version == e.Version && cur.Children > 0 {
				return fmt.Errorf("entity %s: %w", e.ID, ErrHasChildren)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := t.deletePartition(ctx, PrefixEntity+e.ID); err != nil {
		return err
	}
	return t.deletePartition(ctx, PrefixBucket+e.ID)
}

// deletePartition deletes every item whose partition key is pk.
func (t *Table) deletePartition(ctx context.Context, pk string) error {
	p := dynamodb.NewQueryPaginator(t.client, &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pk)},
		ProjectionExpression:      aws.String("PK, SK"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", pk, err)
		}
		for start := 0; start < len(page.Items); start += 25 {
			end := min(start+25, len(page.Items))
			reqs := make([]types.WriteRequest, 0, end-start)
			for _, it := range page.Items[start:end] {
				reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: it}})
			}
			if err := t.batchWrite(ctx, reqs); err != nil {
				return fmt.Errorf("delete %s: %w", pk, err)
			}
		}
	}
	return nil
}

// batchWrite runs BatchWriteItem until nothing is left unprocessed.
func (t *Table) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 0; len(reqs) > 0; attempt++ {
		out, err := t.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{t.name: reqs},
		})
		if err != nil {
			return err
		}
		reqs = out.UnprocessedItems[t.name]
		if len(reqs) > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListChildren returns the children of parent (from GSI1, eventually consistent), ordered by id.
func (t *Table) ListChildren(ctx context.Context, parent string) ([]EntityItem, error) {
	p := dynamodb.NewQueryPaginator(t.client, &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		IndexName:                 aws.String(IndexGSI1),
		KeyConditionExpression:    aws.String("GSI1PK = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": s(PrefixParent + parent)},
	})
	var out []EntityItem
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list children of %s: %w", parent, err)
		}
		for _, it := range page.Items {
			e, err := decodeEntity(it)
			if err != nil {
				return nil, err
			}
			out = append(out, *e)
		}
	}
	return out, nil
}
