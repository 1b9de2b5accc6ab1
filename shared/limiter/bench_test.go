package limiter_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// benchEnv is newEnv for benchmarks (real clock, SDK retries on).
func benchEnv(b *testing.B) (*limiter.Limiter, *dynamodb.Client, string, *ddbtest.Meter) {
	b.Helper()
	meter := ddbtest.NewMeter()
	client := ddbtest.Client(b, meter.Option())
	table := ddbtest.NewTable(b, client).Name()
	return limiter.New(client, table), client, table, meter
}

func reportUsage(b *testing.B, m *ddbtest.Meter, ops int) {
	u := m.Total()
	b.ReportMetric(float64(u.Requests)/float64(ops), "req/op")
	b.ReportMetric(u.TableRCU/float64(ops), "RCU/op")
	b.ReportMetric(u.TableWCU/float64(ops), "WCU/op")
	b.ReportMetric(u.IndexWCU/float64(ops), "indexWCU/op")
}

var big = []limiter.Limit{limiter.PerMinute("rpm", limiter.MaxTokens), limiter.PerMinute("tpm", limiter.MaxTokens)}

// BenchmarkCost measures DynamoDB requests and consumed capacity per operation, as the server
// reports them (ReturnConsumedCapacity=INDEXES). Warm caches: the steady state of a Lambda.
func BenchmarkCost(b *testing.B) {
	ctx := context.Background()
	req := limiter.AcquireRequest{EntityID: "key", Resource: "gpt-4", Limits: big, Consume: map[string]int64{"rpm": 1, "tpm": 500}}
	run := func(name string, setup func(lim *limiter.Limiter), op func(lim *limiter.Limiter)) {
		b.Run(name, func(b *testing.B) {
			lim, _, _, meter := benchEnv(b)
			if setup != nil {
				setup(lim)
			}
			op(lim) // warm the caches
			meter.Reset()
			for b.Loop() {
				op(lim)
			}
			reportUsage(b, meter, b.N)
		})
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	acquire := func(r limiter.AcquireRequest) func(*limiter.Limiter) {
		return func(lim *limiter.Limiter) { _, err := lim.Acquire(ctx, r); must(err) }
	}
	run("acquire", nil, acquire(req))
	stored := req
	stored.UseStoredLimits = true
	run("acquire-stored-limits", func(lim *limiter.Limiter) {
		must(lim.SetLimits(ctx, limiter.EntityDefault("key"), big))
	}, acquire(stored))
	cascade := req
	cascade.EntityID, cascade.Cascade = "child", limiter.CascadeOn
	withParent := func(lim *limiter.Limiter) {
		_, err := lim.CreateEntity(ctx, limiter.Entity{ID: "proj"})
		must(err)
		_, err = lim.CreateEntity(ctx, limiter.Entity{ID: "child", ParentID: "proj"})
		must(err)
	}
	run("acquire-cascade", withParent, acquire(cascade))
	durable := req
	durable.LeaseTTL = time.Minute
	run("acquire-stored-lease", nil, acquire(durable))
	run("refused", func(lim *limiter.Limiter) {
		_, err := lim.Acquire(ctx, limiter.AcquireRequest{EntityID: "key", Resource: "gpt-4", Limits: []limiter.Limit{limiter.PerDay("rpm", 1)}, Consume: map[string]int64{"rpm": 1}})
		must(err)
	}, func(lim *limiter.Limiter) {
		_, err := lim.Acquire(ctx, limiter.AcquireRequest{EntityID: "key", Resource: "gpt-4", Limits: []limiter.Limit{limiter.PerDay("rpm", 1)}, Consume: map[string]int64{"rpm": 1}})
		if err == nil {
			b.Fatal("admitted")
		}
	})
	// Per-lease operations: the acquire is made outside the measured part.
	leaseOp := func(name string, r limiter.AcquireRequest, setup func(*limiter.Limiter), op func(*limiter.Lease) error) {
		b.Run(name, func(b *testing.B) {
			lim, _, _, meter := benchEnv(b)
			if setup != nil {
				setup(lim)
			}
			var u ddbtest.Usage
			for b.Loop() {
				b.StopTimer()
				lease, err := lim.Acquire(ctx, r)
				must(err)
				meter.Reset()
				b.StartTimer()
				must(op(lease))
				b.StopTimer()
				t := meter.Total()
				u.Requests += t.Requests
				u.TableRCU += t.TableRCU
				u.TableWCU += t.TableWCU
				u.IndexWCU += t.IndexWCU
				b.StartTimer()
			}
			b.ReportMetric(float64(u.Requests)/float64(b.N), "req/op")
			b.ReportMetric(u.TableRCU/float64(b.N), "RCU/op")
			b.ReportMetric(u.TableWCU/float64(b.N), "WCU/op")
			b.ReportMetric(u.IndexWCU/float64(b.N), "indexWCU/op")
		})
	}
	leaseOp("adjust", req, nil, func(l *limiter.Lease) error { return l.Adjust(ctx, map[string]int64{"tpm": 700}) })
	leaseOp("adjust-refund", req, nil, func(l *limiter.Lease) error { return l.Adjust(ctx, map[string]int64{"tpm": -200}) })
	leaseOp("commit", req, nil, func(l *limiter.Lease) error { return l.Commit(ctx) })
	leaseOp("rollback", req, nil, func(l *limiter.Lease) error { return l.Rollback(ctx) })
	leaseOp("rollback-cascade", cascade, withParent, func(l *limiter.Lease) error { return l.Rollback(ctx) })
	leaseOp("commit-stored-lease", durable, nil, func(l *limiter.Lease) error { return l.Commit(ctx) })
}

// BenchmarkThroughput compares acquires through the limiter with a raw conditional UpdateItem
// of the same shape (two limits, ADD under a condition) against the same DynamoDB Local, in the
// same run, with 8 concurrent callers. Compare ns/op of the two sub-benchmarks.
func BenchmarkThroughput(b *testing.B) {
	ctx := context.Background()
	b.Run("limiter", func(b *testing.B) {
		lim, _, _, _ := benchEnv(b)
		var n atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			key := "key-" + strconv.FormatInt(n.Add(1), 10)
			for pb.Next() {
				if _, err := lim.Acquire(ctx, limiter.AcquireRequest{EntityID: key, Resource: "gpt-4", Limits: big,
					Consume: map[string]int64{"rpm": 1, "tpm": 500}, Cascade: limiter.CascadeOff}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw-updateitem", func(b *testing.B) {
		_, client, table, _ := benchEnv(b)
		var n atomic.Int64
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			key := "key-" + strconv.FormatInt(n.Add(1), 10)
			for pb.Next() {
				_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: aws.String(table),
					Key: map[string]types.AttributeValue{
						"PK": &types.AttributeValueMemberS{Value: "B#" + key}, "SK": &types.AttributeValueMemberS{Value: "B#gpt-4"},
					},
					UpdateExpression:         aws.String("SET #ts = :ts ADD #a :one, #b :five"),
					ConditionExpression:      aws.String("attribute_not_exists(#a) OR (#a >= :lo AND #b <= :hi)"),
					ExpressionAttributeNames: map[string]string{"#a": "a", "#b": "b", "#ts": "ts"},
					ExpressionAttributeValues: map[string]types.AttributeValue{
						":one": &types.AttributeValueMemberN{Value: "1"}, ":five": &types.AttributeValueMemberN{Value: "500"},
						":lo": &types.AttributeValueMemberN{Value: "0"}, ":hi": &types.AttributeValueMemberN{Value: fmt.Sprint(int64(1) << 62)},
						":ts": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
					},
					ReturnValues:                        types.ReturnValueAllNew,
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
