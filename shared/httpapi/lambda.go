package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// DirectResponse is the answer to a direct invocation: see wire.DirectResponse.
type DirectResponse = wire.DirectResponse

// HandleEvent answers an API Gateway HTTP API event (payload format 2.0). The route is chosen
// from the event's method and raw path, less the stage when the stage is not $default.
func (rt *Router) HandleEvent(ctx context.Context, e events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	var ev httpEvent
	ev.Version, ev.RawPath, ev.RawQueryString, ev.Headers = e.Version, e.RawPath, e.RawQueryString, e.Headers
	ev.Body, ev.IsBase64Encoded = e.Body, e.IsBase64Encoded
	ev.RequestContext.Stage, ev.RequestContext.RequestID = e.RequestContext.Stage, e.RequestContext.RequestID
	ev.RequestContext.HTTP.Method = e.RequestContext.HTTP.Method
	if a := e.RequestContext.Authorizer; a != nil && a.IAM != nil {
		ev.RequestContext.Authorizer = &eventAuthorizer{IAM: &eventIAM{UserARN: a.IAM.UserARN}}
	}
	return rt.handleEvent(ctx, &ev)
}

// httpEvent is the part of a payload-2.0 event the router reads; decoding only it keeps a
// Lambda invocation cheap (the event's other members are skipped, not stored).
type httpEvent struct {
	Version         string            `json:"version"`
	RawPath         string            `json:"rawPath"`
	RawQueryString  string            `json:"rawQueryString"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	RequestContext  struct {
		Stage     string `json:"stage"`
		RequestID string `json:"requestId"`
		HTTP      struct {
			Method string `json:"method"`
		} `json:"http"`
		Authorizer *eventAuthorizer `json:"authorizer"`
	} `json:"requestContext"`
	// Action is set in a direct invocation only.
	Action *json.RawMessage `json:"action"`
}

// eventAuthorizer is the part of an event's IAM authorizer the router reads: who signed.
type eventAuthorizer struct {
	IAM *eventIAM `json:"iam"`
}

type eventIAM struct {
	UserARN string `json:"userArn"`
}

func (rt *Router) handleEvent(ctx context.Context, e *httpEvent) events.APIGatewayV2HTTPResponse {
	req := &Request{Method: e.RequestContext.HTTP.Method, Path: e.RawPath, Header: e.Headers, RequestID: e.RequestContext.RequestID}
	if a := e.RequestContext.Authorizer; a != nil && a.IAM != nil {
		req.Principal = a.IAM.UserARN
	}
	if st := e.RequestContext.Stage; st != "" && st != "$default" && strings.HasPrefix(req.Path, "/"+st+"/") {
		req.Path = req.Path[len(st)+1:]
	}
	if req.RequestID == "" {
		req.RequestID = lambdaRequestID(ctx)
	}
	var resp *Response
	switch body, err := eventBody(e.Body, e.IsBase64Encoded); {
	case err != nil:
		resp = ErrorResponse(err)
	default:
		req.Body = body
		if e.RawQueryString != "" {
			if req.Query, err = url.ParseQuery(e.RawQueryString); err != nil {
				resp = ErrorResponse(invalid("", "malformed query string: %v", err))
			}
		}
		if resp == nil {
			resp = rt.Serve(ctx, req)
		}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: resp.Header, Body: string(resp.Body)}
}

// eventBody returns the event's body, decoded from base64 when API Gateway encoded it, and
// refuses one over MaxBodyBytes before decoding it.
func eventBody(body string, isBase64 bool) ([]byte, error) {
	tooLarge := &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
		Message: fmt.Sprintf("at most %d bytes are accepted", MaxBodyBytes)}
	if !isBase64 {
		if len(body) > MaxBodyBytes {
			return nil, tooLarge
		}
		return []byte(body), nil
	}
	if base64.StdEncoding.DecodedLen(len(body)) > MaxBodyBytes+2 {
		return nil, tooLarge
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, invalid("", "the body is marked base64 but is not")
	}
	return b, nil
}

// HandleDirect answers a direct invocation {"action": name, …}: the action's route runs with
// the payload's path members in the path and the other members as the body.
func (rt *Router) HandleDirect(ctx context.Context, payload []byte) DirectResponse {
	resp := rt.direct(ctx, payload)
	return DirectResponse{Status: resp.Status, Body: resp.Body}
}

func (rt *Router) direct(ctx context.Context, payload []byte) *Response {
	// The body is bounded; the action and path members add little.
	if len(payload) > MaxBodyBytes+1024 {
		return ErrorResponse(&RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("at most %d bytes are accepted", MaxBodyBytes)})
	}
	if err := checkStrict(payload, nil); err != nil { // a member given twice, at any depth
		return ErrorResponse(err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil || members == nil {
		return ErrorResponse(invalid("", "the payload must be a JSON object with an \"action\""))
	}
	var name string
	if err := json.Unmarshal(members["action"], &name); err != nil {
		return ErrorResponse(invalid("action", "must be a string"))
	}
	a, ok := rt.actions[name]
	if !ok {
		return ErrorResponse(invalid("action", "unknown action %q; one of %s", name, strings.Join(rt.Actions(), ", ")))
	}
	delete(members, "action")
	path := a.Pattern
	for _, seg := range strings.Split(a.Pattern, "/") {
		pname, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		pname = strings.TrimSuffix(pname, "}")
		var v string
		if err := json.Unmarshal(members[pname], &v); err != nil || v == "" {
			return ErrorResponse(invalid(pname, "required: a non-empty string"))
		}
		delete(members, pname)
		path = strings.Replace(path, seg, url.PathEscape(v), 1)
	}
	var body []byte
	if len(members) > 0 {
		var err error
		if body, err = json.Marshal(members); err != nil {
			return ErrorResponse(invalid("", "malformed payload: %v", err))
		}
	}
	return rt.Serve(ctx, &Request{Method: a.Method, Path: path, Header: map[string]string{}, Body: body, RequestID: lambdaRequestID(ctx)})
}

// Invoke makes a Router a lambda.Handler that takes both shapes of payload: an API Gateway HTTP
// API event (payload 2.0, told by its version and rawPath) is answered with an API Gateway
// response, and a direct invocation (told by its "action") with a DirectResponse. Anything else
// is answered {"status":400,…}. Invoke never returns an error: every answer is a response.
func (rt *Router) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var probe httpEvent
	var out any
	switch err := json.Unmarshal(payload, &probe); {
	case err == nil && probe.Action == nil && probe.Version == "2.0" && probe.RawPath != "":
		out = rt.handleEvent(ctx, &probe)
	case bytes.Contains(payload, []byte(`"action"`)):
		out = rt.HandleDirect(ctx, payload)
	default:
		resp := ErrorResponse(invalid("", "unrecognised payload: want an API Gateway HTTP API event (payload format 2.0) or {\"action\": …}"))
		rt.log.InfoContext(ctx, "unrecognised payload", "bytes", len(payload))
		out = DirectResponse{Status: resp.Status, Body: resp.Body}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return b, nil
}

// lambdaRequestID returns the Lambda request id of ctx, if any.
func lambdaRequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}
