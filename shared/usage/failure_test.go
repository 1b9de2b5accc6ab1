package usage_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// routed sends the UpdateItem of one item through a client with injected faults, and every
// other call through a healthy client: a fault on the write of one snapshot.
type routed struct {
	*dynamodb.Client
	faulty *dynamodb.Client
	pk, sk string
}

func (r *routed) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	pk, _ := in.Key[storage.AttrPK].(*types.AttributeValueMemberS)
	sk, _ := in.Key[storage.AttrSK].(*types.AttributeValueMemberS)
	if pk != nil && sk != nil && pk.Value == r.pk && sk.Value == r.sk {
		return r.faulty.UpdateItem(ctx, in, opts...)
	}
	return r.Client.UpdateItem(ctx, in, opts...)
}

func seqNum(t *testing.T, s string) string {
	p, err := storage.PadSeq(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPartialFailureReportsAndConverges fails the write of one snapshot (proj, gpt-4, the daily
// window of 2026-11-27) in a batch holding the whole scenario. The response must name the first
// record that snapshot needs and every record after it; the other snapshots are written; and
// the retry Lambda then makes (from that record on), and any further re-delivery, end exact.
func TestPartialFailureReportsAndConverges(t *testing.T) {
	var all []events.DynamoDBEventRecord
	for _, b := range scenarioStream(t) {
		all = append(all, b...)
	}
	faults := &ddbtest.Faults{}
	healthy := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, healthy)
	day := storage.WindowDaily.Start(mustTime(t, "2026-11-27T00:00:00Z").UnixMilli())
	client := &routed{Client: healthy, faulty: ddbtest.Client(t, faults.Option()),
		pk: "U#proj", sk: "U#gpt-4#daily#" + storage.FormatWindowStart(day)}
	var logs strings.Builder
	agg := usage.NewAggregator(storage.New(client, tbl.Name()), usage.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})

	// The records the failed snapshot needs start at proj's first change of that day.
	firstNeeded := ""
	for _, r := range all {
		c, err := usage.ParseRecord(r)
		if err == nil && !c.Zero() && c.EntityID == "proj" && storage.WindowDaily.Start(c.At) == day {
			firstNeeded = c.PaddedSeq
			break
		}
	}
	var want []string
	retryFrom := -1
	for i, r := range all {
		if seqNum(t, r.Change.SequenceNumber) >= firstNeeded {
			want = append(want, r.Change.SequenceNumber)
			if retryFrom < 0 {
				retryFrom = i
			}
		}
	}
	if firstNeeded == "" || retryFrom <= 0 || len(want) == len(all) {
		t.Fatalf("scenario does not exercise a failure in the middle: %q %d", firstNeeded, retryFrom)
	}

	faults.Fail("UpdateItem", 1, nil)
	got := deliver(t, agg, all)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BatchItemFailures %v\nwant %v", got, want)
	}
	if !strings.Contains(logs.String(), `"msg":"usage snapshot write failed"`) || !strings.Contains(logs.String(), ddbtest.ErrInjected.Error()) {
		t.Errorf("no log line for the failed write: %s", logs.String())
	}
	// Every other snapshot is complete; the failed one does not exist.
	exp := expected(t, scenario)
	failedKey := snapKey{"proj", "gpt-4", usage.Daily, "2026-11-27T00:00:00Z"}
	delete(exp, failedKey)
	if gotSnaps, _ := readAll(t, tbl); !reflect.DeepEqual(gotSnaps, exp) {
		t.Fatalf("after the partial failure:\n%v\nwant\n%v", gotSnaps, exp)
	}
	if s := agg.Stats(); s.Failed == 0 || s.Failed+s.Applied+s.Unchanged+s.Removed+s.NotBucket != int64(len(all)) {
		t.Errorf("stats %+v", s)
	}

	// Lambda's retry: every record from the lowest one reported.
	if got := deliver(t, agg, all[retryFrom:]); len(got) != 0 {
		t.Fatalf("retry failed again: %v", got)
	}
	checkExact(t, tbl, scenario)
	// And a later re-delivery of everything changes nothing.
	deliver(t, agg, all)
	checkExact(t, tbl, scenario)
}

// TestCancelledBatchReportsEverything: a batch whose context is already done writes nothing
// and reports every bucket record, from the first, for retry.
func TestCancelledBatchReportsEverything(t *testing.T) {
	var all []events.DynamoDBEventRecord
	for _, b := range scenarioStream(t) {
		all = append(all, b...)
	}
	agg, tbl := newAggregator(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	resp, err := agg.Handle(ctx, events.DynamoDBEvent{Records: all})
	if err != nil || len(resp.BatchItemFailures) == 0 || resp.BatchItemFailures[0].ItemIdentifier != all[0].Change.SequenceNumber {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if got, _ := readAll(t, tbl); len(got) != 0 {
		t.Fatalf("snapshots written under a cancelled context: %v", got)
	}
	// Delivered again with a live context, it converges.
	deliver(t, agg, all)
	checkExact(t, tbl, scenario)
}
