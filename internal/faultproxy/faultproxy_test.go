package faultproxy

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// counterTable creates a table with one item "c" whose attribute n counts ADDs.
func counterTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	direct := ddbtest.Client(t)
	table := ddbtest.TableName(t)
	_, err := direct.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = direct.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return direct, table
}

func add(ctx context.Context, c *dynamodb.Client, table string) error {
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "c"}},
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	})
	return err
}

func count(t *testing.T, c *dynamodb.Client, table string) string {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "c"}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := out.Item["n"].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "absent"
}

// proxied starts a proxy in front of the test's DynamoDB Local and returns a client through it
// that makes at most three attempts per call.
func proxied(t *testing.T, rates map[Kind]float64) (*Proxy, *dynamodb.Client) {
	t.Helper()
	p, err := New(Config{Upstream: ddbtest.Endpoint(t), Rates: rates, WritesOnly: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, ddbtest.NewClient(srv.URL, func(o *dynamodb.Options) { o.RetryMaxAttempts = 3 })
}

// TestLostIsAppliedThenResent shows what "lost" means to a real SDK: each attempt is applied by
// DynamoDB, its answer never arrives, and the SDK resends, so three attempts add 3, and the
// caller is told the call failed.
func TestLostIsAppliedThenResent(t *testing.T) {
	direct, table := counterTable(t)
	p, c := proxied(t, map[Kind]float64{Lost: 1})
	err := add(context.Background(), c, table)
	if err == nil {
		t.Fatal("a call whose every answer was lost succeeded")
	}
	if got := count(t, direct, table); got != "3" {
		t.Errorf("counter = %s after 3 lost attempts, want 3 (each applied)", got)
	}
	if got := p.Injected()["lost UpdateItem"]; got != 3 {
		t.Errorf("injected %v, want 3 lost UpdateItem", p.Injected())
	}
	// Reads are spared with WritesOnly.
	if got := count(t, c, table); got != "3" {
		t.Errorf("read through the proxy = %s", got)
	}
}

// TestErrorsAreNotApplied checks that error, throttle and conflict faults never reach DynamoDB
// and carry the codes the SDK and the limiter classify.
func TestErrorsAreNotApplied(t *testing.T) {
	for kind, code := range map[Kind]string{Error: "InternalServerError", Throttle: "ThrottlingException"} {
		t.Run(string(kind), func(t *testing.T) {
			direct, table := counterTable(t)
			_, c := proxied(t, map[Kind]float64{kind: 1})
			err := add(context.Background(), c, table)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != code {
				t.Fatalf("error %v, want API error %s", err, code)
			}
			if got := count(t, direct, table); got != "absent" {
				t.Errorf("counter = %s, want the item never written", got)
			}
		})
	}
}

// TestConflictOnlyForTransactions checks that a conflict is injected only on TransactWriteItems.
func TestConflictOnlyForTransactions(t *testing.T) {
	direct, table := counterTable(t)
	p, c := proxied(t, map[Kind]float64{Conflict: 1})
	if err := add(context.Background(), c, table); err != nil {
		t.Fatalf("UpdateItem under conflict-only faults: %v", err)
	}
	_, err := c.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
		Update: &types.Update{TableName: aws.String(table),
			Key:                       map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "c"}},
			UpdateExpression:          aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}},
	}}})
	var conflict *types.TransactionConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("transaction error %v, want TransactionConflictException", err)
	}
	if got := count(t, direct, table); got != "1" {
		t.Errorf("counter = %s, want 1 (the UpdateItem only)", got)
	}
	// The SDK does not resend a TransactionConflictException itself (one attempt): the caller
	// decides, which is why the limiter must.
	if got := p.InjectedByKind()[Conflict]; got < 1 {
		t.Errorf("conflicts injected %d, want at least 1", got)
	}
}

func TestParseRates(t *testing.T) {
	got, err := ParseRates(" lost=0.1, throttle=0.05 ")
	if err != nil || got[Lost] != 0.1 || got[Throttle] != 0.05 || len(got) != 2 {
		t.Fatalf("ParseRates = %v, %v", got, err)
	}
	if got, err := ParseRates(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"lost":               "want kind=rate",
		"gone=0.1":           "unknown kind",
		"lost=2":             "not a number in [0, 1]",
		"lost=x":             "not a number in [0, 1]",
		"lost=0.6,error=0.6": "sum to",
	} {
		if _, err := ParseRates(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRates(%q) error %v, want %q", in, err, want)
		}
	}
	if _, err := New(Config{Upstream: "http://x", Rates: map[Kind]float64{Lost: 0.7, Error: 0.7}}); err == nil {
		t.Error("New accepted rates summing above 1")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted no upstream")
	}
}
