package usage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// benchBatches builds n stream batches of 100 bucket records over the given number of bucket
// items (acquires of rpm and tpm, all in one hour), as Lambda delivers them, in JSON.
func benchBatches(n, buckets int) [][]byte {
	const size = 100
	hour := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC).UnixMilli()
	type state struct{ ts, acq, rpm, tpm, v int64 }
	st := make([]state, buckets)
	image := func(b int, s state) map[string]events.DynamoDBAttributeValue {
		num := func(v int64) events.DynamoDBAttributeValue {
			return events.NewNumberAttribute(strconv.FormatInt(v, 10))
		}
		return map[string]events.DynamoDBAttributeValue{
			"PK": events.NewStringAttribute(fmt.Sprintf("B#key-%03d", b)), "SK": events.NewStringAttribute("B#gpt-4"),
			"GSI2PK": events.NewStringAttribute("R#gpt-4"), "GSI2SK": events.NewStringAttribute(fmt.Sprintf("B#key-%03d", b)),
			"ts": num(s.ts), "v": num(s.v), "acq": num(s.acq), "u#rpm": num(s.rpm), "u#tpm": num(s.tpm),
			"e#rpm": num(107_744_160_000_000_000 + s.rpm*60_000), "k#rpm": events.NewStringAttribute("100000/100000/60000"),
			"e#tpm": num(107_744_160_000_000_000 + s.tpm*60_000), "k#tpm": events.NewStringAttribute("10000000/10000000/60000"),
		}
	}
	out := make([][]byte, n)
	seq := int64(100_000_000_000_000_000)
	for i := range out {
		ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, size)}
		for j := range ev.Records {
			b := (i*size + j) % buckets
			old := st[b]
			cur := state{ts: hour + int64(i*size+j)%3_600_000, acq: old.acq + 1, rpm: old.rpm + 1000, tpm: old.tpm + 250_000, v: old.v + 1}
			st[b] = cur
			seq++
			name, oldImg := "MODIFY", image(b, old)
			if old.acq == 0 {
				name, oldImg = "INSERT", nil
			}
			newImg := image(b, cur)
			ev.Records[j] = events.DynamoDBEventRecord{
				EventID: strconv.FormatInt(seq, 16), EventName: name, EventVersion: "1.1", EventSource: "aws:dynamodb",
				AWSRegion: "us-east-1", EventSourceArn: "arn:aws:dynamodb:us-east-1:123456789012:table/bench/stream/2026-11-26T00:00:00.000",
				Change: events.DynamoDBStreamRecord{
					Keys:     map[string]events.DynamoDBAttributeValue{"PK": newImg["PK"], "SK": newImg["SK"]},
					NewImage: newImg, OldImage: oldImg, SequenceNumber: strconv.FormatInt(seq, 10),
					SizeBytes: 400, StreamViewType: "NEW_AND_OLD_IMAGES",
				},
			}
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}

// BenchmarkAggregator measures batches of 100 stream records through the Lambda handler (JSON
// in, JSON out) on DynamoDB Local: records per second, snapshot writes (UpdateItem requests)
// per batch and the write capacity they consumed. "redelivered" hands over batches that were
// all applied already.
func BenchmarkAggregator(b *testing.B) {
	for _, c := range []struct {
		name        string
		buckets     int
		redelivered bool
	}{
		{"buckets=1", 1, false},
		{"buckets=10", 10, false},
		{"buckets=100", 100, false},
		{"buckets=10/redelivered", 10, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			meter := ddbtest.NewMeter()
			tbl := ddbtest.NewTable(b, ddbtest.Client(b, meter.Option()))
			agg := usage.NewAggregator(tbl, usage.Config{Logger: slog.New(slog.DiscardHandler)})
			h := lambda.NewHandler(agg.Handle)
			// Warm up: the first batch creates the snapshots; the measured ones update them.
			batches := benchBatches(b.N+1, c.buckets)
			if _, err := h.Invoke(ctx, batches[0]); err != nil {
				b.Fatal(err)
			}
			if c.redelivered {
				for _, p := range batches[1:] {
					if _, err := h.Invoke(ctx, p); err != nil {
						b.Fatal(err)
					}
				}
			}
			meter.Reset()
			before := agg.Stats()
			b.ResetTimer()
			for _, p := range batches[1:] {
				if _, err := h.Invoke(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			s := agg.Stats()
			if s.Failed != before.Failed || s.Malformed != 0 {
				b.Fatalf("stats %+v", s)
			}
			if !c.redelivered && s.Applied-before.Applied != int64(100*b.N) {
				b.Fatalf("applied %d of %d", s.Applied-before.Applied, 100*b.N)
			}
			u := meter.Snapshot()["UpdateItem"]
			b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(u.Requests)/float64(b.N), "writes/batch")
			b.ReportMetric((u.TableWCU+u.IndexWCU)/float64(b.N), "WCU/batch")
		})
	}
}

// BenchmarkRawUpdateItem is the floor to compare with: 20 plain UpdateItems (no condition, the
// same item shape, 16 in flight) per op, made directly with the SDK — what a batch of the
// buckets=10 case writes, without the handler.
func BenchmarkRawUpdateItem(b *testing.B) {
	ctx := context.Background()
	client := ddbtest.Client(b)
	tbl := ddbtest.NewTable(b, client)
	sv := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := func(i int) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"PK": sv(fmt.Sprintf("U#key-%03d", i)), "SK": sv("U#gpt-4#hourly#2026-11-26T19:00:00Z")}
	}
	for i := 0; i < 20; i++ {
		item := key(i)
		item["GSI2PK"], item["GSI2SK"] = sv("R#gpt-4"), sv(fmt.Sprintf("U#hourly#2026-11-26T19:00:00Z#key-%03d", i))
		item["counters"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"rpm": &types.AttributeValueMemberN{Value: "0"}}}
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl.Name()), Item: item}); err != nil {
			b.Fatal(err)
		}
	}
	sem := make(chan struct{}, usage.DefaultConcurrency)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl.Name()), Key: key(i),
					UpdateExpression:          aws.String("SET counters.rpm = counters.rpm + :v"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "1000"}}})
				if err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(20*b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkParseBatch is the handler's own work without DynamoDB: a batch of 100 records
// decoded from Lambda's JSON and read with ParseRecord.
func BenchmarkParseBatch(b *testing.B) {
	payload := benchBatches(1, 10)[0]
	h := lambda.NewHandler(func(_ context.Context, ev events.DynamoDBEvent) error {
		for _, r := range ev.Records {
			if _, err := usage.ParseRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Invoke(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
}
