// Command direct calls PutItem through an interface; DeleteItem is in a method never called.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

type api interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

type store struct{ c api }

func (s *store) put(ctx context.Context) { _, _ = s.c.PutItem(ctx, &dynamodb.PutItemInput{}) }

func (s *store) del(ctx context.Context) { _, _ = s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{}) }

func main() {
	s := &store{c: dynamodb.New(dynamodb.Options{})}
	s.put(context.Background())
}
