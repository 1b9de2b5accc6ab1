package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/zeroae/zae-limiter-go/internal/clip"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// call is one API call: the direct action, the HTTP path, the lease it names, and its body.
type call struct {
	action  string
	path    string
	leaseID string
	body    any    // nil: no body
	method  string // "" is POST; admin calls (HTTP only) use GET, PUT and DELETE
}

// shownPath is the call's path as errors show it: a lease id (a bearer secret: it settles the
// lease) cut to wire.LeaseRef.
func (c call) shownPath() string {
	if c.leaseID == "" {
		return c.path
	}
	return strings.Replace(c.path, url.PathEscape(c.leaseID), wire.LeaseRef(c.leaseID), 1)
}

// transport sends a call and returns the answer's status and body; an error means no answer.
type transport interface {
	send(ctx context.Context, c call) (status int, body []byte, err error)
}

// maxAnswer bounds an answer read into memory.
const maxAnswer = 1 << 20

// httpTransport sends calls over HTTP, SigV4-signed when it has credentials.
type httpTransport struct {
	base   string
	client *http.Client
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer
}

func (t *httpTransport) send(ctx context.Context, c call) (int, []byte, error) {
	body := []byte{}
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
	}
	method := cmp.Or(c.method, http.MethodPost)
	req, err := http.NewRequestWithContext(ctx, method, t.base+c.path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if t.creds != nil {
		creds, err := t.creds.Retrieve(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("retrieve AWS credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		if err := t.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", t.region, time.Now()); err != nil {
			return 0, nil, fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := t.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = t.base + c.shownPath() // net/http's error names the whole URL
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, c.shownPath(), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer of %s %s: %w", method, c.shownPath(), err)
	}
	return resp.StatusCode, out, nil
}

// InvokeAPI is the Lambda Invoke call the client uses. *lambda.Client implements it, and so does
// InvokerFunc around an in-process handler.
type InvokeAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// InvokerFunc adapts a function with the shape of lambda.Handler's Invoke (payload in, payload
// out) to InvokeAPI, so the client can call a handler in the same process:
// client.NewLambda(client.InvokerFunc(lambda.NewHandler(h).Invoke), "acquire"). A returned
// error becomes a function error, as Lambda reports it.
type InvokerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Invoke implements InvokeAPI.
func (f InvokerFunc) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	out, err := f(ctx, in.Payload)
	if err != nil {
		msg, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": "Unhandled"})
		return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: msg}, nil
	}
	return &lambda.InvokeOutput{StatusCode: 200, Payload: out}, nil
}

// retriedError is a transport error after which the AWS SDK has already retried the request
// (Lambda Invoke through its own retryer): the client does not send the call again on top, so
// a call is sent at most the SDK's attempts, not the SDK's times the client's.
type retriedError struct{ err error }

func (e *retriedError) Error() string { return e.err.Error() }
func (e *retriedError) Unwrap() error { return e.err }

// lambdaTransport sends calls as direct invocations of the acquire function.
type lambdaTransport struct {
	api      InvokeAPI
	function string
}

func (t *lambdaTransport) send(ctx context.Context, c call) (int, []byte, error) {
	payload := map[string]json.RawMessage{}
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
		if err := json.Unmarshal(b, &payload); err != nil {
			return 0, nil, fmt.Errorf("encode request: %w", err)
		}
	}
	payload["action"], _ = json.Marshal(c.action)
	if c.leaseID != "" {
		payload["lease_id"], _ = json.Marshal(c.leaseID)
	}
	in, err := json.Marshal(payload)
	if err != nil {
		return 0, nil, fmt.Errorf("encode request: %w", err)
	}
	out, err := t.api.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(t.function), Payload: in})
	if err != nil {
		return 0, nil, &retriedError{fmt.Errorf("invoke %s: %w", t.function, err)}
	}
	if out.FunctionError != nil {
		return 0, nil, fmt.Errorf("invoke %s: function error %s: %s", t.function, *out.FunctionError, clip.String(string(out.Payload), 300))
	}
	var resp wire.DirectResponse
	if err := json.Unmarshal(out.Payload, &resp); err != nil || resp.Status == 0 {
		return 0, nil, fmt.Errorf("invoke %s: not a direct-invocation answer: %s", t.function, clip.String(string(out.Payload), 300))
	}
	return resp.Status, resp.Body, nil
}

// trimBase returns a base URL without its trailing slash.
func trimBase(u string) string { return strings.TrimRight(u, "/") }
