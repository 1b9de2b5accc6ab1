package streampoller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/internal/streampoller"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func streams(t testing.TB) *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ddbtest.Endpoint(t)),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

func sv(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func put(t *testing.T, c *dynamodb.Client, table, pk, sk string, extra map[string]types.AttributeValue) {
	t.Helper()
	item := map[string]types.AttributeValue{"PK": sv(pk), "SK": sv(sk)}
	for k, v := range extra {
		item[k] = v
	}
	if _, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// recorder is a handler that keeps every batch and answers with the responses it is given,
// in order (success once they run out).
type recorder struct {
	mu      sync.Mutex
	batches []events.DynamoDBEvent
	answers []func(events.DynamoDBEvent) (events.DynamoDBEventResponse, error)
	total   int
	want    int
	done    func()
}

func (r *recorder) handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, ev)
	if len(r.answers) > 0 {
		a := r.answers[0]
		r.answers = r.answers[1:]
		return a(ev)
	}
	if r.total += len(ev.Records); r.total >= r.want && r.done != nil {
		r.done()
	}
	return events.DynamoDBEventResponse{}, nil
}

// run polls until the recorder has had want records delivered successfully, or 15 s.
func run(t *testing.T, cfg streampoller.Config, rec *recorder, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec.want, rec.done, rec.total = want, cancel, 0
	cfg.Client, cfg.Handler = streams(t), rec.handle
	cfg.PollInterval, cfg.RetryDelay = 10*time.Millisecond, 10*time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := streampoller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.total < want {
		t.Fatalf("%d records delivered, want %d", rec.total, want)
	}
}

func TestPollerDeliversLambdaEvents(t *testing.T) {
	ctx := context.Background()
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client)
	every := map[string]types.AttributeValue{
		"s": sv("x"), "n": &types.AttributeValueMemberN{Value: "123456789012345678901234567890"},
		"b": &types.AttributeValueMemberB{Value: []byte{0, 1, 2}}, "t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true}, "ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1", "2"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{sv("a"), &types.AttributeValueMemberN{Value: "1"}}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": sv("v")}},
	}
	put(t, client, tbl.Name(), "B#k1", "B#gpt-4", every)
	if _, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl.Name()),
		Key:              map[string]types.AttributeValue{"PK": sv("B#k1"), "SK": sv("B#gpt-4")},
		UpdateExpression: aws.String("SET s = :y"), ExpressionAttributeValues: map[string]types.AttributeValue{":y": sv("y")}}); err != nil {
		t.Fatal(err)
	}
	put(t, client, tbl.Name(), "E#k1", "#META", nil) // filtered out below
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tbl.Name()),
		Key: map[string]types.AttributeValue{"PK": sv("B#k1"), "SK": sv("B#gpt-4")}}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	run(t, streampoller.Config{TableName: tbl.Name(), Filter: func(r events.DynamoDBEventRecord) bool {
		return strings.HasPrefix(r.Change.Keys["PK"].String(), storage.PrefixBucket)
	}}, rec, 3)

	ls, err := streams(t).ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String(tbl.Name())})
	if err != nil || len(ls.Streams) != 1 {
		t.Fatal(ls, err)
	}
	arn := aws.ToString(ls.Streams[0].StreamArn)
	var recs []events.DynamoDBEventRecord
	for _, b := range rec.batches {
		recs = append(recs, b.Records...)
	}
	if len(recs) != 3 || recs[0].EventName != "INSERT" || recs[1].EventName != "MODIFY" || recs[2].EventName != "REMOVE" {
		t.Fatalf("records %+v", recs)
	}
	for i, r := range recs {
		if r.EventSourceArn != arn || r.EventSource != "aws:dynamodb" || r.AWSRegion == "" || r.EventID == "" || r.EventVersion == "" ||
			r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || r.Change.SequenceNumber == "" || r.Change.SizeBytes == 0 ||
			r.Change.ApproximateCreationDateTime.IsZero() || r.Change.Keys["PK"].String() != "B#k1" || r.Change.Keys["SK"].String() != "B#gpt-4" {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	ins, mod, rem := recs[0].Change, recs[1].Change, recs[2].Change
	if ins.OldImage != nil || mod.OldImage["s"].String() != "x" || mod.NewImage["s"].String() != "y" || rem.NewImage != nil || rem.OldImage["s"].String() != "y" {
		t.Errorf("images: %+v %+v %+v", ins, mod, rem)
	}
	img := ins.NewImage
	if img["n"].Number() != "123456789012345678901234567890" || !reflect.DeepEqual(img["b"].Binary(), []byte{0, 1, 2}) || !img["t"].Boolean() ||
		!img["z"].IsNull() || !reflect.DeepEqual(img["ss"].StringSet(), []string{"a", "b"}) || !reflect.DeepEqual(img["ns"].NumberSet(), []string{"1", "2"}) ||
		len(img["bs"].BinarySet()) != 2 || img["l"].List()[1].Number() != "1" || img["m"].Map()["k"].String() != "v" {
		t.Errorf("attribute values: %+v", img)
	}
	// The event survives Lambda's JSON path unchanged.
	payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var got events.DynamoDBEvent
	_, err = lambda.NewHandler(func(_ context.Context, ev events.DynamoDBEvent) error { got = ev; return nil }).Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		a, b := got.Records[i], recs[i]
		a.Change.ApproximateCreationDateTime, b.Change.ApproximateCreationDateTime = events.SecondsEpochTime{}, events.SecondsEpochTime{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("record %d after JSON:\n%+v\nwant\n%+v", i, a, b)
		}
	}
}

func TestPollerResumesAfterRestart(t *testing.T) {
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client)
	state := filepath.Join(t.TempDir(), "state.json")
	for i := 0; i < 3; i++ {
		put(t, client, tbl.Name(), fmt.Sprintf("B#%d", i), "B#r", nil)
	}
	first := &recorder{}
	run(t, streampoller.Config{TableName: tbl.Name(), StatePath: state}, first, 3)
	b, err := os.ReadFile(state)
	if err != nil || !strings.Contains(string(b), "sequence_number") {
		t.Fatalf("state file: %s %v", b, err)
	}
	for i := 3; i < 5; i++ {
		put(t, client, tbl.Name(), fmt.Sprintf("B#%d", i), "B#r", nil)
	}
	second := &recorder{}
	run(t, streampoller.Config{TableName: tbl.Name(), StatePath: state}, second, 2)
	var pks []string
	for _, b := range second.batches {
		for _, r := range b.Records {
			pks = append(pks, r.Change.Keys["PK"].String())
		}
	}
	if !reflect.DeepEqual(pks, []string{"B#3", "B#4"}) {
		t.Fatalf("after restart got %v, want only the new records", pks)
	}
	// A state file of another stream (the table was re-created) starts over.
	if err := os.WriteFile(state, []byte(`{"stream_arn":"arn:other","shards":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	third := &recorder{}
	run(t, streampoller.Config{TableName: tbl.Name(), StatePath: state}, third, 5)
}

func TestPollerRetriesLikeLambda(t *testing.T) {
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client)
	for i := 0; i < 4; i++ {
		put(t, client, tbl.Name(), fmt.Sprintf("B#%d", i), "B#r", nil)
	}
	fail := func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return events.DynamoDBEventResponse{}, errors.New("boom")
	}
	// Report the last two records, highest first: delivery resumes at the lowest one named.
	partial := func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		n := len(ev.Records)
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{
			{ItemIdentifier: ev.Records[n-1].Change.SequenceNumber}, {ItemIdentifier: ev.Records[n-2].Change.SequenceNumber},
		}}, nil
	}
	// An identifier that is not in the batch fails the whole batch, as for Lambda.
	bogus := func(ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: ""}}}, nil
	}
	rec := &recorder{answers: []func(events.DynamoDBEvent) (events.DynamoDBEventResponse, error){fail, bogus, partial}}
	run(t, streampoller.Config{TableName: tbl.Name()}, rec, 2)
	var got [][]string
	for _, b := range rec.batches {
		var pks []string
		for _, r := range b.Records {
			pks = append(pks, r.Change.Keys["PK"].String())
		}
		got = append(got, pks)
	}
	all := []string{"B#0", "B#1", "B#2", "B#3"}
	want := [][]string{all, all, all, {"B#2", "B#3"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
}

func TestPollerWaitsForTable(t *testing.T) {
	client := ddbtest.Client(t)
	name := ddbtest.TableName(t)
	// The table is created once the poller said it waits for it: no sleep, no race.
	waiting := &signal{msg: "waiting for the table's stream", ch: make(chan struct{})}
	go func() {
		<-waiting.ch
		tbl := storage.New(client, name)
		if err := tbl.CreateTable(context.Background()); err != nil {
			t.Error(err)
			return
		}
		// Not put: t.Fatal may not be called off the test's goroutine.
		if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(name),
			Item: map[string]types.AttributeValue{"PK": sv("B#k"), "SK": sv("B#r")}}); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	run(t, streampoller.Config{TableName: name, Logger: slog.New(waiting)}, &recorder{}, 1)
}

// signal is a log handler that closes ch at the first record whose message is msg.
type signal struct {
	msg  string
	ch   chan struct{}
	once sync.Once
}

func (s *signal) Enabled(context.Context, slog.Level) bool { return true }
func (s *signal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == s.msg {
		s.once.Do(func() { close(s.ch) })
	}
	return nil
}
func (s *signal) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *signal) WithGroup(string) slog.Handler      { return s }
