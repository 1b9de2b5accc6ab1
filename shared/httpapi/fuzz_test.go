package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/functions/acquire/acquireapi"
	"github.com/zeroae/zae-limiter-go/functions/admin/adminapi"
	"github.com/zeroae/zae-limiter-go/shared/httpapi"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// downDB is DynamoDB refusing every request: with it the fuzz targets run the whole path of a
// request, validation included, without a server, and any input that passes validation ends in
// *limiter.UnavailableError (503), never in a write.
type downDB struct{}

var errDown = errors.New("dynamodb is down")

func (downDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errDown
}
func (downDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, errDown
}
func (downDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errDown
}
func (downDB) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, errDown
}
func (downDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errDown
}
func (downDB) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return nil, errDown
}
func (downDB) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return nil, errDown
}
func (downDB) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return nil, errDown
}
func (downDB) CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return nil, errDown
}
func (downDB) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return nil, errDown
}
func (downDB) UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return nil, errDown
}

func downLimiter() *limiter.Limiter {
	return limiter.New(downDB{}, "t", limiter.WithLogger(slog.New(slog.DiscardHandler)), limiter.WithMaxAttempts(1))
}

// seeds are request bodies the fuzz targets start from (testdata/fuzz holds more).
var seeds = []string{
	`{"entity_id":"key-1","resource":"gpt-4","consume":{"rpm":1,"tpm":500},"limits":[{"name":"rpm","rate":100,"period":"minute"},{"name":"tpm","capacity":10000,"refill_amount":10000,"refill_period_seconds":60}]}`,
	`{"entity_id":"k","resource":"r","consume":{"a":1},"limits":[{"name":"a","rate":1,"period":"second","burst":5}],"cascade":false,"failure_mode":"fail_open","request_id":"r-1","lease_ttl_seconds":30}`,
	`{"entity_id":"k","resource":"r","consume":{"a":1},"use_stored_limits":true,"commit":true}`,
	`{"entity_id":"k#","resource":"r","consume":{"a":-1}}`,
	`{"limits":[{"name":"x","capacity":1,"refill_amount":1,"refill_period_seconds":0.001}]}`,
	`{"entity_id":"k","resource":"r","needed":{"a":1}}`,
	`{"adjust":{"a":-5}}`,
	`{}`, ``, `[]`, `null`, `{"consume":null}`,
}

// FuzzDecodeAcquire feeds any body to the acquire route's decoding and validation and on to
// the limiter (whose DynamoDB is down): the answer is always a 4xx, or 503 for a valid request
// failing closed, or 200 for one failing open; never a 500 or a panic.
func FuzzDecodeAcquire(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lim := downLimiter()
	f.Fuzz(func(t *testing.T, body []byte) {
		var in httpapi.AcquireRequest
		err := httpapi.Decode(body, &in, false)
		var req limiter.AcquireRequest
		if err == nil {
			req, err = in.Limiter()
		}
		if err == nil {
			var lease *limiter.Lease
			lease, err = lim.Acquire(context.Background(), req)
			if err == nil && !lease.Degraded() {
				t.Fatalf("granted without DynamoDB: %s", body)
			}
		}
		if err == nil {
			return
		}
		if r := httpapi.ErrorResponse(err); r.Status >= 500 && r.Status != http.StatusServiceUnavailable || r.Status < 400 {
			t.Fatalf("body %q: status %d for %v", body, r.Status, err)
		}
	})
}

// FuzzDecodeLimits checks the two spellings of a limit: whatever decodes and validates reads
// back through its full spelling to the same limits.
func FuzzDecodeLimits(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in httpapi.LimitsBody
		if err := httpapi.Decode(body, &in, false); err != nil {
			return
		}
		limits, err := in.Limiter()
		if err != nil {
			if r := httpapi.ErrorResponse(err); r.Status != http.StatusBadRequest {
				t.Fatalf("%q: status %d for %v", body, r.Status, err)
			}
			return
		}
		for _, l := range limits {
			if err := l.Validate(); err != nil {
				t.Fatalf("%q: accepted an invalid limit %v: %v", body, l, err)
			}
		}
		b, _ := json.Marshal(httpapi.LimitsBody{Limits: httpapi.LimitsFrom(limits)})
		var back httpapi.LimitsBody
		if err := httpapi.Decode(b, &back, false); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		again, err := back.Limiter()
		if err != nil || len(again) != len(limits) {
			t.Fatalf("%s: %v", b, err)
		}
		for i := range again {
			if again[i] != limits[i] {
				t.Fatalf("round trip %v != %v", again[i], limits[i])
			}
		}
	})
}

// FuzzInvoke sends any payload to both functions' Lambda handlers (DynamoDB down): the answer
// is always JSON with a status, never a 500, a handler error or a panic.
func FuzzInvoke(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
		f.Add([]byte(`{"action":"acquire",` + s[min(1, len(s)):]))
	}
	for _, s := range []string{
		`{"action":"adjust","lease_id":"0123456789abcdef0123456789abcdef","adjust":{"a":1}}`,
		`{"action":"rollback","lease_id":"../../x"}`,
		`{"version":"2.0","rawPath":"/v1/acquire","requestContext":{"http":{"method":"POST"}},"body":"{}"}`,
		`{"version":"2.0","rawPath":"/v1/entities/e1","requestContext":{"http":{"method":"PUT"}},"body":"{\"name\":\"x\",\"parent_id\":\"p\"}"}`,
		`{"version":"2.0","rawPath":"/v1/leases/x/commit","isBase64Encoded":true,"body":"e30=","requestContext":{"http":{"method":"POST"}}}`,
	} {
		f.Add([]byte(s))
	}
	quiet := slog.New(slog.DiscardHandler)
	routers := []*httpapi.Router{acquireapi.New(downLimiter(), quiet), adminapi.New(downLimiter(), quiet)}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, rt := range routers {
			out, err := rt.Invoke(context.Background(), payload)
			if err != nil {
				t.Fatalf("%q: handler error %v", payload, err)
			}
			var answer struct {
				Status     int `json:"status"`
				StatusCode int `json:"statusCode"`
			}
			if err := json.Unmarshal(out, &answer); err != nil {
				t.Fatalf("%q: answer %q is not JSON: %v", payload, out, err)
			}
			status := max(answer.Status, answer.StatusCode)
			if status < 200 || status >= 500 && status != http.StatusServiceUnavailable {
				t.Fatalf("%q: status %d: %s", payload, status, out)
			}
		}
	})
}
