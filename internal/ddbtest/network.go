package ddbtest

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// ResponseLost is the error Network returns for a request DynamoDB applied but whose answer it
// drops. With Resend it reports itself retryable, so the SDK sends the same request again (same
// ClientRequestToken), as it does after a connection reset.
type ResponseLost struct{ Resend bool }

// Error says that the answer was lost.
func (e *ResponseLost) Error() string {
	return "ddbtest: response lost after DynamoDB applied the request"
}

// RetryableError tells the SDK's retryer whether to resend.
func (e *ResponseLost) RetryableError() bool { return e.Resend }

// Network injects what a real network does to requests that reached DynamoDB: answers lost
// after the request applied (LoseResponse), and other clients' requests landing between two of
// this client's (Before). Rules match by operation name and are consumed in order.
type Network struct {
	mu     sync.Mutex
	lose   []netRule
	before []netRule
}

type netRule struct {
	op     string
	times  int
	resend bool
	fn     func(ctx context.Context)
}

// LoseResponse makes the next n calls of op reach DynamoDB and apply, then fail with
// *ResponseLost{Resend: resend} instead of their answer. With resend the SDK sends the
// request again (if its retryer allows more attempts) and that answer is returned.
func (nw *Network) LoseResponse(op string, n int, resend bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.lose = append(nw.lose, netRule{op: op, times: n, resend: resend})
}

// Before runs fn before the next n calls of op are sent (fn may use another client: its
// requests land first).
func (nw *Network) Before(op string, n int, fn func(ctx context.Context)) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.before = append(nw.before, netRule{op: op, times: n, fn: fn})
}

func take(rules []netRule, op string) (netRule, bool) {
	for i := range rules {
		r := &rules[i]
		if r.times == 0 || (r.op != "" && r.op != op) {
			continue
		}
		r.times--
		return *r, true
	}
	return netRule{}, false
}

func (nw *Network) next(rules *[]netRule, op string) (netRule, bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return take(*rules, op)
}

// Option installs the network on a client.
func (nw *Network) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbtestBefore",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if r, ok := nw.next(&nw.before, awsmiddleware.GetOperationName(ctx)); ok {
						r.fn(ctx)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before); err != nil {
				return err
			}
			// In the Deserialize step, inside the retryer: the request has been sent and
			// answered when the rule drops the answer.
			return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("ddbtestLoseResponse",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					if err != nil {
						return out, md, err
					}
					if r, ok := nw.next(&nw.lose, awsmiddleware.GetOperationName(ctx)); ok {
						return middleware.DeserializeOutput{}, md, &ResponseLost{Resend: r.resend}
					}
					return out, md, nil
				}), middleware.Before)
		})
	}
}
