package ddbtest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Partitions maps an IAM write action ("dynamodb:PutItem", "dynamodb:UpdateItem",
// "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem") to the
// partition-key patterns a role may write with it: "E#*" for a prefix, "SYSTEM" for one key, as
// the role's dynamodb:LeadingKeys StringLike condition has them.
type Partitions map[string][]string

// Allows reports whether action may write partition pk.
func (p Partitions) Allows(action, pk string) bool {
	for _, pattern := range p[action] {
		if prefix, ok := strings.CutSuffix(pattern, "*"); (ok && strings.HasPrefix(pk, prefix)) || pattern == pk {
			return true
		}
	}
	return false
}

// Guard refuses, before it is sent, every write a role with dynamodb:LeadingKeys conditions
// would be denied, as an AccessDeniedException would, and records it. Items of a
// TransactWriteItems are checked as their item actions (Put as dynamodb:PutItem…), the requests
// of a BatchWriteItem as dynamodb:BatchWriteItem, like IAM does. Reads are not checked. A Guard
// is safe for concurrent use.
type Guard struct {
	allowed    Partitions
	mu         sync.Mutex
	violations []string
}

// NewGuard returns a guard allowing the writes of allowed and no other.
func NewGuard(allowed Partitions) *Guard { return &Guard{allowed: allowed} }

// Violations returns the refused writes so far, as "<action> <pk>".
func (g *Guard) Violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.violations...)
}

// Reset forgets the violations so far.
func (g *Guard) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.violations = nil
}

// Option installs the guard on a client.
func (g *Guard) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbtestGuard",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if err := g.inspect(in.Parameters); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
}

func (g *Guard) check(action string, key map[string]types.AttributeValue) error {
	pk := ""
	if s, ok := key["PK"].(*types.AttributeValueMemberS); ok {
		pk = s.Value
	}
	if g.allowed.Allows(action, pk) {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.violations = append(g.violations, action+" "+pk)
	return fmt.Errorf("AccessDeniedException: not authorized to perform %s on an item with PK %q", action, pk)
}

func (g *Guard) inspect(p any) error {
	switch in := p.(type) {
	case *dynamodb.PutItemInput:
		return g.check("dynamodb:PutItem", in.Item)
	case *dynamodb.UpdateItemInput:
		return g.check("dynamodb:UpdateItem", in.Key)
	case *dynamodb.DeleteItemInput:
		return g.check("dynamodb:DeleteItem", in.Key)
	case *dynamodb.BatchWriteItemInput:
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				var err error
				if r.PutRequest != nil {
					err = g.check("dynamodb:BatchWriteItem", r.PutRequest.Item)
				}
				if r.DeleteRequest != nil {
					err = g.check("dynamodb:BatchWriteItem", r.DeleteRequest.Key)
				}
				if err != nil {
					return err
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			var err error
			switch {
			case it.Put != nil:
				err = g.check("dynamodb:PutItem", it.Put.Item)
			case it.Update != nil:
				err = g.check("dynamodb:UpdateItem", it.Update.Key)
			case it.Delete != nil:
				err = g.check("dynamodb:DeleteItem", it.Delete.Key)
			case it.ConditionCheck != nil:
				err = g.check("dynamodb:ConditionCheckItem", it.ConditionCheck.Key)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
