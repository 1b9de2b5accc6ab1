package adminapi_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// adminWrites are the writes the admin function's IAM role allows (infra: TableGrants, whose
// actions TestGrantsMatchCode derives from this code): entity, resource-limit and system-limit
// partitions, audit records, and batch deletes of a deleted entity's buckets. Never snapshots (U#) or leases.
var adminWrites = ddbtest.Partitions{
	"dynamodb:PutItem":    {"E#*", "R#*", "SYSTEM", "AUDIT#*"},
	"dynamodb:UpdateItem": {"E#*", "R#*", "SYSTEM", "AUDIT#*"},
	"dynamodb:DeleteItem": {"E#*", "R#*", "SYSTEM", "AUDIT#*"},
	// An entity's limits are written on the condition that the entity is stored.
	"dynamodb:ConditionCheckItem": {"E#*", "R#*", "SYSTEM", "AUDIT#*"},
	"dynamodb:BatchWriteItem":     {"E#*", "R#*", "SYSTEM", "AUDIT#*", "B#*"},
}

// Every admin route, run as the admin role may: no write leaves its partitions, and deleting an
// entity still removes its buckets.
func TestAdminWritesStayInItsPartitions(t *testing.T) {
	guard := ddbtest.NewGuard(adminWrites)
	client := ddbtest.Client(t, guard.Option())
	table := ddbtest.NewTable(t, client).Name()
	quiet := slog.New(slog.DiscardHandler)
	lim := limiter.New(client, table, limiter.WithLogger(quiet))
	e := &env{t: t, lim: lim, handler: lambda.NewHandler(adminapi.ForLimiter(lim, usage.NewTableReader(client, table), quiet)), meter: ddbtest.NewMeter()}

	e.expect(event(t, "put-entity.json"), 201, `"id":"org-acme"`)
	e.expect(event(t, "put-child-entity.json"), 201, `"parent_id":"org-acme"`)
	for _, name := range []string{"put-entity-limits.json", "put-entity-default-limits.json", "put-resource-limits.json", "put-system-limits.json"} {
		e.expect(event(t, name), 201, `"limits"`)
	}
	for _, name := range []string{"get-entity.json", "children.json", "get-entity-limits.json", "get-resource-limits.json",
		"get-system-limits.json", "get-entity-usage.json", "get-resource-usage.json"} {
		e.expect(event(t, name), 200, ``)
	}
	// The acquire role (unguarded here) makes a bucket for the child.
	seed := limiter.New(ddbtest.Client(t), table, limiter.WithLogger(quiet))
	lease, err := seed.Acquire(context.Background(), limiter.AcquireRequest{EntityID: "key-acme-1", Resource: "gpt-4",
		Limits: []limiter.Limit{limiter.PerMinute("rpm", 10)}, Consume: map[string]int64{"rpm": 1}, Cascade: limiter.CascadeOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"delete-entity-limits.json", "delete-resource-limits.json", "delete-system-limits.json", "delete-entity.json"} {
		e.expect(event(t, name), 204, ``)
	}
	e.expect(event(t, "put-entity.json", path("DELETE", "/v1/entities/org-acme")), 204, ``)
	if v := guard.Violations(); len(v) > 0 {
		t.Fatalf("the admin function wrote outside its partitions: %v", v)
	}
	bucket, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "B#key-acme-1"}, "SK": &types.AttributeValueMemberS{Value: "B#gpt-4"}}})
	if err != nil || bucket.Item != nil {
		t.Fatalf("the deleted entity's bucket: %v %v", bucket, err)
	}

	// The guard itself refuses a snapshot or lease write, and a bucket write other than a batch.
	for action, write := range map[string]func() error{
		"snapshot": func() error {
			_, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table),
				Item: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "U#key-acme-1"}, "SK": &types.AttributeValueMemberS{Value: "U#x"}}})
			return err
		},
		"bucket update": func() error {
			_, err := client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(table),
				Key:              map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "B#key-acme-1"}, "SK": &types.AttributeValueMemberS{Value: "B#gpt-4"}},
				UpdateExpression: aws.String("SET x = :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberN{Value: "1"}}})
			return err
		},
	} {
		if err := write(); err == nil {
			t.Errorf("the guard let a %s write through", action)
		}
	}
	if v := guard.Violations(); len(v) != 2 {
		t.Fatalf("violations %v, want the 2 refused writes", v)
	}
}
