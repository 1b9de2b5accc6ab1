package ddbtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// add sends a non-idempotent ADD of 1 to a counter and returns the call's error.
func add(c *dynamodb.Client, table string) error {
	_, err := c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "c"}, "SK": &types.AttributeValueMemberS{Value: "c"},
		},
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	return err
}

func counter(t *testing.T, c *dynamodb.Client, table string) string {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "c"}, "SK": &types.AttributeValueMemberS{Value: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := out.Item["n"].(*types.AttributeValueMemberN)
	if n == nil {
		return ""
	}
	return n.Value
}

// A lost response is applied, and the SDK resends the request: a bare ADD counts twice. This is
// the fault every write of the limiter must survive.
func TestLoseResponseAppliesAndTheSDKResends(t *testing.T) {
	f := &ddbtest.Faults{}
	c := ddbtest.Client(t, f.Option(), ddbtest.FastRetries(3))
	table := ddbtest.NewTable(t, c).Name()
	f.LoseResponse("UpdateItem", 1)
	if err := add(c, table); err != nil {
		t.Fatalf("resent add: %v", err)
	}
	if got := counter(t, c, table); got != "2" || f.Lost() != 1 {
		t.Fatalf("counter %q after one lost response (lost %d), want 2: applied, resent, applied", got, f.Lost())
	}
	// Every response lost: the caller gets the error, though every attempt was applied.
	f.LoseResponse("UpdateItem", -1)
	var lost *ddbtest.ResponseLost
	if err := add(c, table); !errors.As(err, &lost) {
		t.Fatalf("want ResponseLost, got %v", err)
	}
	if got := counter(t, c, table); got != "5" {
		t.Fatalf("counter %q, want 5 (3 more attempts applied)", got)
	}
	f.Clear()
	// Throttling inside the retry loop is retried by the SDK; past its budget the caller sees it.
	f.FailAttempts("UpdateItem", 2, ddbtest.Throttled())
	if err := add(c, table); err != nil {
		t.Fatalf("two throttles within 3 attempts: %v", err)
	}
	f.FailAttempts("UpdateItem", 3, ddbtest.Throttled())
	var pte *types.ProvisionedThroughputExceededException
	if err := add(c, table); !errors.As(err, &pte) {
		t.Fatalf("three throttles: %v", err)
	}
	if got := counter(t, c, table); got != "6" {
		t.Fatalf("counter %q, want 6 (throttled attempts apply nothing)", got)
	}
	// LoseResponseAfter lets the first attempts through.
	f.LoseResponseAfter("UpdateItem", 1, 1)
	if err := add(c, table); err != nil || f.Lost() != 4 {
		t.Fatalf("skipped rule: %v, lost %d", err, f.Lost())
	}
	if err := add(c, table); err != nil || counter(t, c, table) != "9" {
		t.Fatalf("counter %s, want 9", counter(t, c, table))
	}
}
