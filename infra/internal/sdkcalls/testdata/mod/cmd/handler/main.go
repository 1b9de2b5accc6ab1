// Command handler hands a method value to code that calls it by reflection, as lambda.Start
// does; the handler writes a transaction and pages through an index.
package main

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type handler struct{ c *dynamodb.Client }

func (h *handler) handle(ctx context.Context) error {
	_, err := h.c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{}},
		{Put: &types.Put{}},
	}})
	if err != nil {
		return err
	}
	p := dynamodb.NewQueryPaginator(h.c, &dynamodb.QueryInput{IndexName: aws.String("GSI9")})
	_, err = p.NextPage(ctx)
	return err
}

// unused would need DeleteItem.
func (h *handler) unused(ctx context.Context) {
	_, _ = h.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{})
}

func start(fn any) {
	reflect.ValueOf(fn).Call([]reflect.Value{reflect.ValueOf(context.Background())})
}

func main() {
	h := &handler{c: dynamodb.New(dynamodb.Options{})}
	start(h.handle)
}
