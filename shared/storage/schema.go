package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableDefinition returns the CreateTable input for a table called name: PK/SK, GSI1 and GSI2,
// on-demand billing and a NEW_AND_OLD_IMAGES stream. The CDK stack declares the same schema.
func TableDefinition(name string) *dynamodb.CreateTableInput {
	str := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			str(AttrPK), str(AttrSK), str(AttrGSI1PK), str(AttrGSI1SK), str(AttrGSI2PK), str(AttrGSI2SK),
		},
		KeySchema: keys(AttrPK, AttrSK),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{
				// Only child entities carry GSI1 keys, and they are written by admin calls alone.
				IndexName:  aws.String(IndexGSI1),
				KeySchema:  keys(AttrGSI1PK, AttrGSI1SK),
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
			},
			{
				// GSI2 projects what a per-resource usage query reads. No attribute an acquire
				// writes is projected, so acquires never write to the index.
				IndexName: aws.String(IndexGSI2),
				KeySchema: keys(AttrGSI2PK, AttrGSI2SK),
				Projection: &types.Projection{
					ProjectionType:   types.ProjectionTypeInclude,
					NonKeyAttributes: []string{"entity_id", "resource", "window", "window_start", "counters", "acquires"},
				},
			},
		},
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	}
}

// CreateTable creates the table if it does not exist, waits until it is active and turns on
// TTL on the ttl attribute. It is idempotent. It is meant for DynamoDB Local and tests; in AWS
// the CDK stack owns the table.
func (t *Table) CreateTable(ctx context.Context) error {
	_, err := t.client.CreateTable(ctx, TableDefinition(t.name))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", t.name, err)
	}
	for {
		out, err := t.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.name)})
		if err != nil {
			return fmt.Errorf("describe table %s: %w", t.name, err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err = t.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(t.name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL), Enabled: aws.Bool(true),
		},
	})
	if err != nil && !strings.Contains(err.Error(), "already enabled") {
		return fmt.Errorf("enable TTL on %s: %w", t.name, err)
	}
	return nil
}
