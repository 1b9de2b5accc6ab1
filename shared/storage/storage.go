// Package storage keeps the limiter's state in one DynamoDB table.
//
// It owns the key layout (see keys.go and docs/design.md), the item formats and the conditional
// writes that make every limiter operation one request in the common case. It knows nothing of
// leases, caches or retries: the limiter package decides, this package persists.
//
// # Why the items look the way they do
//
//   - One bucket item per entity+resource holds every limit of that pair, so an acquire of
//     several limits is one conditional UpdateItem (1 WCU for a small item), and a cascade to a
//     parent is one TransactWriteItems of two such items.
//   - A limit's state is a single number E (see package tokenbucket): taking from a bucket that
//     is not full is ADD E x·P under a condition that E lies between Floor and Ceiling, so no
//     read is needed and concurrent writers never conflict. A full (or new) bucket is SET to an
//     exact value instead, under the condition that it is still full. The caller guesses which
//     case holds (from what it saw last); a wrong guess fails its condition, which returns the
//     current item at no read cost (ReturnValuesOnConditionCheckFailure), and the caller retries
//     with the truth.
//   - Partition prefixes separate what each function writes (B# and LEASE# by acquire; E#, R#,
//     SYSTEM by admin; U# by the aggregator; AGG# is reserved and unused) so IAM's
//     dynamodb:LeadingKeys can enforce least privilege. Deleting an entity removes its buckets
//     with BatchWriteItem (admin), which IAM must allow on B# for the admin function.
//   - GSI keys are written once, when an item is created, and indexes project only attributes
//     that never change on an acquire, so acquires write nothing to an index.
package storage

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Client is the part of the DynamoDB API the table uses. *dynamodb.Client implements it.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// Table is the limiter's DynamoDB table. It is safe for concurrent use.
type Table struct {
	client Client
	name   string
}

// New returns the table called name, reached through client.
func New(client Client, name string) *Table { return &Table{client: client, name: name} }

// Name returns the table's name.
func (t *Table) Name() string { return t.name }

// Errors a caller can test with errors.Is. Other errors are DynamoDB's, wrapped.
var (
	// ErrNotFound means the item does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrEntityNotStored means a write that requires its entity found none (nothing written).
	ErrEntityNotStored = errors.New("storage: entity not stored")
	// ErrExists means a create found the item already there.
	ErrExists = errors.New("storage: already exists")
	// ErrConflict means a concurrent transaction touched the same item; the write can be retried.
	ErrConflict = errors.New("storage: transaction conflict")
	// ErrInvalidKey means an id or resource cannot be part of a key.
	ErrInvalidKey = errors.New("storage: invalid key")
)
