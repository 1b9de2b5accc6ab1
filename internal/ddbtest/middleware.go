package ddbtest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
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

// Conflict returns the error DynamoDB gives a transaction cancelled because another request was
// changing one of its items (one TransactionConflict reason per item), as the SDK decodes it.
func Conflict(items int) error {
	reasons := make([]types.CancellationReason, items)
	for i := range reasons {
		reasons[i] = types.CancellationReason{Code: aws.String("TransactionConflict")}
	}
	return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled: TransactionConflict"), CancellationReasons: reasons}
}

// Throttled returns the error DynamoDB gives a request over the table's throughput; the SDK
// retries it within its budget.
func Throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("ddbtest: injected throttling")}
}

// Faults injects failures into chosen DynamoDB calls. Rules are matched by operation name ("" matches
// every operation) and consumed in order; each call takes the first rule that matches.
//
// Fail rules act before the SDK's retry loop: the call fails once with the error, unretried.
// Wire rules (LoseResponse, FailAttempts) act on each attempt the SDK sends, after its retry
// middleware, so the SDK retries them as it would the real fault.
type Faults struct {
	mu    sync.Mutex
	rules []rule
	wire  []rule
	lost  int
}

type rule struct {
	op    string
	times int // < 0: forever
	err   error
	skip  int // matching calls to let through before the rule applies
}

// Fail makes the next n calls of op (every operation when op is "") fail with err (ErrInjected
// when nil) before they are sent; n < 0 means until Clear.
func (f *Faults) Fail(op string, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rule{op: op, times: n, err: err})
}

// LoseResponse makes the next n attempts of op reach DynamoDB, which applies them (or refuses
// them: an error answer is lost too), and then lose their responses: the SDK sees a
// *ResponseLost{Resend: true} and, when it has attempts left, sends the same request again.
// Unlike Network.LoseResponse it acts on each attempt inside the SDK's retry loop, so one call
// can lose several answers in a row. n < 0 means until Clear.
func (f *Faults) LoseResponse(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wire = append(f.wire, rule{op: op, times: n})
}

// LoseResponseAfter is LoseResponse for the attempts of op after the next skip ones.
func (f *Faults) LoseResponseAfter(op string, skip, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wire = append(f.wire, rule{op: op, times: n, skip: skip})
}

// FailAttempts makes the next n attempts of op fail with err without reaching DynamoDB, inside
// the SDK's retry loop: a retryable err (Throttled) is retried by the SDK within its budget, as
// the real error would be. n < 0 means until Clear.
func (f *Faults) FailAttempts(op string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wire = append(f.wire, rule{op: op, times: n, err: err})
}

// Lost returns how many responses LoseResponse has dropped.
func (f *Faults) Lost() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules, f.wire = nil, nil
}

// match returns the first applicable rule of rules for op, consuming one use of it.
func match(rules []rule, op string) (rule, bool) {
	for i := range rules {
		r := &rules[i]
		if r.times == 0 || (r.op != "" && r.op != op) {
			continue
		}
		if r.skip > 0 {
			r.skip--
			return rule{}, false
		}
		if r.times > 0 {
			r.times--
		}
		return *r, true
	}
	return rule{}, false
}

func (f *Faults) next(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := match(f.rules, op)
	if !ok {
		return nil
	}
	return r.err
}

func (f *Faults) nextWire(op string) (rule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return match(f.wire, op)
}

// Option installs the faults on a client. Fail's errors are not retried by the SDK; wire faults
// are retried as the SDK's retryer decides (see FastRetries for tests that want retries).
func (f *Faults) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbtestFaults",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if err := f.next(awsmiddleware.GetOperationName(ctx)); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before); err != nil {
				return err
			}
			wire := middleware.FinalizeMiddlewareFunc("ddbtestWireFaults",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					op := awsmiddleware.GetOperationName(ctx)
					r, ok := f.nextWire(op)
					if !ok {
						return next.HandleFinalize(ctx, in)
					}
					if r.err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, r.err
					}
					out, md, err := next.HandleFinalize(ctx, in)
					var api smithy.APIError
					if err != nil && !errors.As(err, &api) {
						return out, md, err // it never reached DynamoDB: nothing to lose
					}
					f.mu.Lock()
					f.lost++
					f.mu.Unlock()
					return middleware.FinalizeOutput{}, md, &ResponseLost{Resend: true}
				})
			return st.Finalize.Insert(wire, "Retry", middleware.After)
		})
	}
}

// FastRetries gives a client the SDK's standard retryer with n attempts, no backoff delay and no
// retry quota, so tests of retried faults run without waiting.
func FastRetries(n int) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = n
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			so.RateLimiter = ratelimit.None
		})
	}
}
