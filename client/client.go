// Package client calls the limiter's acquire API from Go, over HTTP (API Gateway, SigV4-signed
// with the caller's AWS credentials) or over Lambda Invoke (the acquire function's direct
// invocation), with the library's request types and errors, which live in package wire (the
// limiter's names for them, such as limiter.AcquireRequest, are aliases of the same types):
//
//	c, _ := client.NewHTTP(apiURL, client.WithAWSConfig(cfg))
//	err := c.Do(ctx, wire.AcquireRequest{EntityID: "key-1", Resource: "gpt-4",
//		Limits: []wire.Limit{wire.PerMinute("rpm", 100)}, Consume: map[string]int64{"rpm": 1}},
//		func(ctx context.Context, l *client.Lease) error { return callModel(ctx) })
//
// A refusal is a *RateLimitExceededError, bad input a *ValidationError, an unreachable or
// failing limiter an *UnavailableError; errors.As also finds the library's types in them, and
// errors.Is the library's lease sentinels, so code written against package limiter handles
// the client's errors unchanged. The client imports package wire only, not the limiter, its
// storage or DynamoDB's SDK (TestClientImportsOnlyWireTypes keeps it so).
//
// A client made with NewHTTP also speaks the admin API (entities, stored limits, usage and the
// audit trail: PutEntity, SetLimits, Usage, AuditLog, …), as the zl command does.
//
// Every acquire carries a request id (one is made when the request has none), so the client
// retries an acquire whose answer was lost without consuming twice. Every adjust carries an
// idempotency key (one per call), so it is retried too and applies once; commit, rollback and
// the availability calls are idempotent and retried.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/zeroae/zae-limiter-go/internal/jitter"
	"github.com/zeroae/zae-limiter-go/internal/randid"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// DefaultMaxAttempts is how many times a retryable call is sent before its error is returned.
const DefaultMaxAttempts = 3

// Client calls the acquire API. It is safe for concurrent use.
type Client struct {
	t           transport
	maxAttempts int
	backoff     time.Duration
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	httpClient  *http.Client
	creds       aws.CredentialsProvider
	region      string
	maxAttempts int
	backoff     time.Duration
}

// WithHTTPClient sets the HTTP client of NewHTTP (default: one with a 30 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(s *settings) { s.httpClient = c } }

// WithCredentials signs HTTP requests with SigV4 (service execute-api) in region.
func WithCredentials(creds aws.CredentialsProvider, region string) Option {
	return func(s *settings) { s.creds, s.region = creds, region }
}

// WithAWSConfig signs HTTP requests with cfg's credentials and region when it has both; without
// them requests go unsigned (a local stack).
func WithAWSConfig(cfg aws.Config) Option {
	return func(s *settings) {
		if cfg.Credentials != nil && cfg.Region != "" {
			s.creds, s.region = cfg.Credentials, cfg.Region
		}
	}
}

// WithMaxAttempts sets how many times a retryable call is sent (default 3; 1 never retries).
func WithMaxAttempts(n int) Option { return func(s *settings) { s.maxAttempts = max(n, 1) } }

// WithBackoff sets the cap of the random wait before the first retry (default 50 ms); the cap
// doubles after each retry, up to 2 s ("full jitter": a uniform wait between 0 and the cap).
func WithBackoff(d time.Duration) Option { return func(s *settings) { s.backoff = d } }

func newSettings(opts []Option) settings {
	s := settings{maxAttempts: DefaultMaxAttempts, backoff: 50 * time.Millisecond}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// NewHTTP returns a client of the API at baseURL (the API Gateway stage URL, or the local
// stack's http://127.0.0.1:8080).
func NewHTTP(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[:port][/path]", baseURL)
	}
	s := newSettings(opts)
	hc := s.httpClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	t := &httpTransport{base: trimBase(baseURL), client: hc}
	if s.creds != nil {
		if s.region == "" {
			return nil, errors.New("client: signing needs a region")
		}
		t.creds, t.region, t.signer = aws.NewCredentialsCache(s.creds), s.region, v4.NewSigner()
	}
	return &Client{t: t, maxAttempts: s.maxAttempts, backoff: s.backoff}, nil
}

// NewLambda returns a client that invokes the acquire function called function (name or ARN)
// directly through api (a *lambda.Client, or an InvokerFunc in tests).
func NewLambda(api InvokeAPI, function string, opts ...Option) *Client {
	s := newSettings(opts)
	return &Client{t: &lambdaTransport{api: api, function: function}, maxAttempts: s.maxAttempts, backoff: s.backoff}
}

// Acquire takes req.Consume from the entity's limits, all or nothing, and returns the lease.
// The lease is stored by the API for req.LeaseTTL (the API's default, 15 minutes, when 0).
// When req.RequestID is empty the client makes one, so its own retries are idempotent.
//
// It returns *RateLimitExceededError (nothing consumed), *ValidationError, or
// *UnavailableError. With req.FailureMode FailOpen, an unavailable API yields a degraded lease
// instead (Degraded), as the library does when DynamoDB is.
func (c *Client) Acquire(ctx context.Context, req wire.AcquireRequest) (*Lease, error) {
	if req.RequestID == "" {
		req.RequestID = newID()
	}
	var out wire.AcquireResponse
	err := c.do(ctx, true, call{action: "acquire", path: "/v1/acquire", body: req.JSON()}, &out)
	if err != nil {
		if req.FailureMode == wire.FailOpen && retryable(err) {
			return &Lease{c: c, id: newID(), entityID: req.EntityID, resource: req.Resource, consumed: map[string]int64{}, degraded: true}, nil
		}
		return nil, err
	}
	return &Lease{c: c, id: out.LeaseID, entityID: out.EntityID, resource: out.Resource, consumed: out.Consumed,
		statuses: toStatuses(out.Statuses), expiresAt: out.ExpiresAt, degraded: out.Degraded}, nil
}

// Consume takes req.Consume from the entity's limits for good, all or nothing, and returns the
// statuses after it: an acquire committed at once, with no lease to settle (one conditional
// write on the server instead of a transaction). req.RequestID and req.LeaseTTL must be empty.
// It is not retried: without a request id it is not idempotent. Errors are those of Acquire;
// with FailOpen an unavailable API returns no error and no statuses.
func (c *Client) Consume(ctx context.Context, req wire.AcquireRequest) ([]wire.LimitStatus, error) {
	body := req.JSON()
	body.Commit = true
	var out wire.AcquireResponse
	if err := c.do(ctx, false, call{action: "acquire", path: "/v1/acquire", body: body}, &out); err != nil {
		if req.FailureMode == wire.FailOpen && retryable(err) {
			return nil, nil
		}
		return nil, err
	}
	return toStatuses(out.Statuses), nil
}

// Adjust changes a lease's consumption by amounts (whole tokens by limit name, negative to give
// back) and returns the statuses after it. It sends a new idempotency key and retries a lost or
// failed answer with it, so the adjustment applies at most once (see AdjustOnce to choose the
// key, and to retry across calls).
func (c *Client) Adjust(ctx context.Context, leaseID string, amounts map[string]int64) ([]wire.LimitStatus, error) {
	return c.AdjustOnce(ctx, leaseID, newID(), amounts)
}

// AdjustOnce is Adjust with the caller's idempotency key (1 to 128 characters from
// A-Z a-z 0-9 _ . : @ / + = -): the API applies one key to a lease once, whoever sends it, so a
// call that returned an *UnavailableError can be repeated with the same key.
func (c *Client) AdjustOnce(ctx context.Context, leaseID, key string, amounts map[string]int64) ([]wire.LimitStatus, error) {
	out, err := c.adjust(ctx, leaseID, key, amounts)
	if err != nil {
		return nil, err
	}
	return toStatuses(out.Statuses), nil
}

func (c *Client) adjust(ctx context.Context, leaseID, key string, amounts map[string]int64) (*wire.LeaseResponse, error) {
	var out wire.LeaseResponse
	err := c.do(ctx, true, leaseCall("adjust", leaseID, wire.AdjustRequest{Adjust: amounts, IdempotencyKey: key}), &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Commit ends a lease and keeps what it consumed. It is idempotent; after a rollback it returns
// an error matching ErrLeaseRolledBack, for an unknown or expired lease one matching
// ErrLeaseNotFound.
func (c *Client) Commit(ctx context.Context, leaseID string) error {
	return c.do(ctx, true, leaseCall("commit", leaseID, nil), nil)
}

// Settle ends a lease keeping final (whole tokens by limit name; limits not named keep what the
// lease holds): the API adjusts and commits it in one write. It is retried: a repeat answers
// 200 when the lease keeps final, an error matching ErrLeaseCommitted when it keeps other
// amounts, one matching ErrLeaseRolledBack after a rollback.
func (c *Client) Settle(ctx context.Context, leaseID string, final map[string]int64) error {
	return c.do(ctx, true, leaseCall("commit", leaseID, wire.SettleRequest{Consumed: final}), nil)
}

// Rollback ends a lease and puts back all it consumed. It is idempotent; after a commit it
// returns an error matching ErrLeaseCommitted, for an unknown or expired lease one matching
// ErrLeaseNotFound.
func (c *Client) Rollback(ctx context.Context, leaseID string) error {
	return c.do(ctx, true, leaseCall("rollback", leaseID, nil), nil)
}

func leaseCall(action, leaseID string, body any) call {
	return call{action: action, path: "/v1/leases/" + url.PathEscape(leaseID) + "/" + action, leaseID: leaseID, body: body}
}

// Available returns the whole tokens available now in every limit of the entity+resource.
func (c *Client) Available(ctx context.Context, req wire.AvailableRequest) (map[string]int64, error) {
	var out wire.AvailableResponse
	if err := c.do(ctx, true, call{action: "available", path: "/v1/available", body: req.JSON()}, &out); err != nil {
		return nil, err
	}
	return out.Available, nil
}

// TimeUntilAvailable returns how long until needed (whole tokens by limit name) will all be
// available, 0 when they are now.
func (c *Client) TimeUntilAvailable(ctx context.Context, req wire.AvailableRequest, needed map[string]int64) (time.Duration, error) {
	a := req.JSON()
	body := wire.TimeUntilAvailableRequest{EntityID: a.EntityID, Resource: a.Resource, Limits: a.Limits,
		UseStoredLimits: a.UseStoredLimits, Needed: needed}
	var out wire.TimeUntilAvailableResponse
	if err := c.do(ctx, true, call{action: "time_until_available", path: "/v1/time-until-available", body: body}, &out); err != nil {
		return 0, err
	}
	return time.Duration(out.RetryAfterMs) * time.Millisecond, nil
}

// Do acquires, runs fn with the lease, and commits when fn returns nil. When fn returns an error
// or panics it rolls the lease back first; the panic is then raised again, and the error is
// returned joined with any rollback error.
func (c *Client) Do(ctx context.Context, req wire.AcquireRequest, fn func(context.Context, *Lease) error) error {
	lease, err := c.Acquire(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			// The caller's context may be what failed; the rollback gets its own time.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = lease.Rollback(rctx)
			panic(p)
		}
	}()
	if ferr := fn(ctx, lease); ferr != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return errors.Join(ferr, lease.Rollback(rctx))
	}
	return lease.Commit(ctx)
}

// do sends a call, retrying a retryable failure when idempotent (a 503 answer, or no answer over
// HTTP; not an Invoke error, which the SDK has retried), and decodes a 2xx answer into out (when
// not nil).
func (c *Client) do(ctx context.Context, idempotent bool, cl call, out any) error {
	attempts := 1
	if idempotent {
		attempts = c.maxAttempts
	}
	var err error
	for i := range attempts {
		if i > 0 {
			// Full jitter from the client's backoff, doubling to at most 2 s.
			if werr := (jitter.Backoff{Base: c.backoff, Max: max(c.backoff, 2*time.Second)}).Wait(ctx, i-1); werr != nil {
				return errors.Join(err, werr)
			}
		}
		if err = c.once(ctx, cl, out); err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if re := (*retriedError)(nil); errors.As(err, &re) {
			return err // the SDK's retryer already resent it
		}
	}
	return err
}

func (c *Client) once(ctx context.Context, cl call, out any) error {
	status, body, err := c.t.send(ctx, cl)
	if err != nil {
		return newUnavailable(0, cl.action, err)
	}
	if so, ok := out.(*statusOut); ok {
		*so.status, out = status, so.out
	}
	if status < 200 || status > 299 {
		return answerError(cl.action, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("client: decode answer of %s: %w", cl.action, err)
		}
	}
	return nil
}

func toStatuses(ss []wire.StatusJSON) []wire.LimitStatus {
	out := make([]wire.LimitStatus, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.LimitStatus())
	}
	return out
}

// newID returns 128 random bits in hex.
func newID() string { return randid.Hex() }
