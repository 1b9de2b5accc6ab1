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
		Cascade:   d.bool(item, attrCascade),
		Metadata:  d.strMap(item, attrMetadata),
	}
	if d.err != nil {
		return nil, fmt.Errorf("storage: entity %s: %w", e.ID, d.err)
	}
	return e, nil
}

// CreateEntity stores a new entity. It returns ErrExists when the id is taken. A child is
// created in one transaction with a check that its parent exists and is a root
// (ErrParentNotFound, ErrParentIsChild), and the parent's child count goes up by one, so a
// parent can never be deleted while it has children.
func (t *Table) CreateEntity(ctx context.Context, e EntityItem) error {
	e.Children = 0
	put := &dynamodb.PutItemInput{
		TableName:           aws.String(t.name),
		Item:                encodeEntity(e),
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}
	if e.ParentID == "" {
		_, err := t.client.PutItem(ctx, put)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("entity %s: %w", e.ID, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("create entity %s: %w", e.ID, err)
		}
		return nil
	}
	_, err := t.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression}},
		{Update: &types.Update{
			TableName:                           aws.String(t.name),
			Key:                                 entityKey(e.ParentID),
			UpdateExpression:                    aws.String("ADD #c :one"),
			ConditionExpression:                 aws.String("attribute_exists(PK) AND attribute_not_exists(#p)"),
			ExpressionAttributeNames:            map[string]string{"#c": attrChildren, "#p": attrParent},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":one": num(1)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
	}})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) == 2 {
		switch {
		case aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed":
			return fmt.Errorf("entity %s: %w", e.ID, ErrExists)
		case aws.ToString(tce.CancellationReasons[1].Code) == "ConditionalCheckFailed":
			if len(tce.CancellationReasons[1].Item) == 0 {
				return fmt.Errorf("entity %s: %w: %s", e.ID, ErrParentNotFound, e.ParentID)
			}
			return fmt.Errorf("entity %s: %w: %s", e.ID, ErrParentIsChild, e.ParentID)
		case aws.ToString(tce.CancellationReasons[0].Code) == "TransactionConflict",
			aws.ToString(tce.CancellationReasons[1].Code) == "TransactionConflict":
			return fmt.Errorf("create entity %s: %w: %w", e.ID, ErrConflict, err)
		}
	}
	if err != nil {
		return fmt.Errorf("create entity %s: %w", e.ID, err)
	}
	return nil
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

// UpdateEntity replaces an existing entity's name, cascade default and metadata; the parent is
// fixed at creation. It returns the entity as stored, or ErrNotFound.
func (t *Table) UpdateEntity(ctx context.Context, e EntityItem) (*EntityItem, error) {
	out, err := t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(t.name),
		Key:                 entityKey(e.ID),
		UpdateExpression:    aws.String("SET #n = :n, #c = :c, #m = :m, #u = :u"),
		ConditionExpression: aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames: map[string]string{
			"#n": attrName, "#c": attrCascade, "#m": attrMetadata, "#u": attrUpdated,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":n": s(e.Name), ":c": &types.AttributeValueMemberBOOL{Value: e.Cascade},
			":m": encodeStringMap(e.Metadata), ":u": num(e.UpdatedAt),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil, fmt.Errorf("entity %s: %w", e.ID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("update entity %s: %w", e.ID, err)
	}
	return decodeEntity(out.Attributes)
}

// DeleteEntity deletes an entity, its stored limits and its buckets. It returns ErrNotFound for
// an unknown entity and ErrHasChildren, deleting nothing, when the entity has children. The
// entity item goes first (in one transaction with its parent's child count); its limits and
// buckets follow, so a failure part way leaves only items no entity refers to. Usage snapshots
// are kept until their TTL: they are the billing record.
func (t *Table) DeleteEntity(ctx context.Context, id string) error {
	e, err := t.GetEntity(ctx, id)
	if err != nil {
		return err
	}
	if e.Children > 0 {
		return fmt.Errorf("entity %s: %w", id, ErrHasChildren)
	}
	del := &types.Delete{
		TableName:                aws.String(t.name),
		Key:                      entityKey(id),
		ConditionExpression:      aws.String("attribute_exists(PK) AND (attribute_not_exists(#c) OR #c = :zero)"),
		ExpressionAttributeNames: map[string]string{"#c": attrChildren},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": num(0),
		},
	}
	if e.ParentID == "" {
		_, err = t.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: del.TableName, Key: del.Key, ConditionExpression: del.ConditionExpression,
			ExpressionAttributeNames: del.ExpressionAttributeNames, ExpressionAttributeValues: del.ExpressionAttributeValues,
		})
	} else {
		_, err = t.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Delete: del},
			{Update: &types.Update{
				TableName:                 aws.String(t.name),
				Key:                       entityKey(e.ParentID),
				UpdateExpression:          aws.String("ADD #c :minus"),
				ConditionExpression:       aws.String("attribute_exists(PK)"),
				ExpressionAttributeNames:  map[string]string{"#c": attrChildren},
				ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1)},
			}},
		}})
	}
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	if errors.As(err, &ccf) || (errors.As(err, &tce) && len(tce.CancellationReasons) > 0 &&
		aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed") {
		// The entity went away or gained a child since it was read.
		if _, gerr := t.GetEntity(ctx, id); errors.Is(gerr, ErrNotFound) {
			return gerr
		}
		return fmt.Errorf("entity %s: %w", id, ErrHasChildren)
	}
	if err != nil {
		return fmt.Errorf("delete entity %s: %w", id, err)
	}
	if err := t.deletePartition(ctx, PrefixEntity+id); err != nil {
		return err
	}
	return t.deletePartition(ctx, PrefixBucket+id)
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
