package ddbtest

import (
	"context"
	"errors"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Usage is what a Meter counted for one operation name.
type Usage struct {
	Requests int
	TableRCU float64 // read capacity units on the table itself
	TableWCU float64 // write capacity units on the table itself
	IndexWCU float64 // write capacity units on its indexes
	IndexRCU float64
}

// Meter counts DynamoDB requests per operation and the consumed capacity the server reports. Its
// Option asks for ReturnConsumedCapacity=INDEXES on every request that supports it.
type Meter struct {
	mu    sync.Mutex
	usage map[string]Usage
}

// NewMeter returns an empty meter.
func NewMeter() *Meter { return &Meter{usage: map[string]Usage{}} }

// Option installs the meter on a client.
func (m *Meter) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbtestMeter",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					requestCapacity(in.Parameters)
					out, md, err := next.HandleInitialize(ctx, in)
					m.record(awsmiddleware.GetOperationName(ctx), out.Result)
					return out, md, err
				}), middleware.After)
		})
	}
}

func requestCapacity(p any) {
	const idx = types.ReturnConsumedCapacityIndexes
	switch in := p.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = idx
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = idx
	}
}

func (m *Meter) record(op string, result any) {
	var cc []types.ConsumedCapacity
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		cc = one(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		cc = out.ConsumedCapacity
	case *dynamodb.BatchWriteItemOutput:
		cc = out.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		cc = out.ConsumedCapacity
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.usage[op]
	u.Requests++
	// DynamoDB reports CapacityUnits, read or write by the kind of operation.
	read := op == "GetItem" || op == "BatchGetItem" || op == "Query" || op == "Scan"
	for _, c := range cc {
		if c.Table != nil {
			if read {
				u.TableRCU += f(c.Table.CapacityUnits)
			} else {
				u.TableWCU += f(c.Table.CapacityUnits)
			}
		}
		for _, g := range c.GlobalSecondaryIndexes {
			if read {
				u.IndexRCU += f(g.CapacityUnits)
			} else {
				u.IndexWCU += f(g.CapacityUnits)
			}
		}
	}
	m.usage[op] = u
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

func f(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// Snapshot returns the counts so far, by operation name.
func (m *Meter) Snapshot() map[string]Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Usage, len(m.usage))
	for k, v := range m.usage {
		out[k] = v
	}
	return out
}

// Total returns the sum over all operations.
func (m *Meter) Total() Usage {
	var t Usage
	for _, u := range m.Snapshot() {
		t.Requests += u.Requests
		t.TableRCU += u.TableRCU
		t.TableWCU += u.TableWCU
		t.IndexRCU += u.IndexRCU
		t.IndexWCU += u.IndexWCU
	}
	return t
}

// Reset forgets the counts.
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.usage = map[string]Usage{}
}

// ErrInjected is the error Faults returns by default.
var ErrInjected = errors.New("ddbtest: injected fault")

// Faults fails chosen DynamoDB calls before they are sent. Rules are matched by operation name
// ("" matches every operation) and consumed in order.
type Faults struct {
	mu    sync.Mutex
	rules []rule
}

type rule struct {
	op    string
	times int // < 0: forever
	err   error
}

// Fail makes the next n calls of op (every operation when op is "") fail with err (ErrInjected
// when nil); n < 0 means until Clear.
func (f *Faults) Fail(op string, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rule{op: op, times: n, err: err})
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

func (f *Faults) next(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.times == 0 || (r.op != "" && r.op != op) {
			continue
		}
		if r.times > 0 {
			r.times--
		}
		return r.err
	}
	return nil
}

// Option installs the faults on a client. Injected errors are not retried by the SDK: set
// o.RetryMaxAttempts yourself if a test needs retries of them.
func (f *Faults) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbtestFaults",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if err := f.next(awsmiddleware.GetOperationName(ctx)); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
}
