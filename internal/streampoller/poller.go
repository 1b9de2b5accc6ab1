// Package streampoller reads a DynamoDB stream the way a Lambda event source mapping does, for
// running the aggregator locally (make run) against DynamoDB Local.
//
// It hands each batch to a handler as the exact event Lambda would deliver
// (events.DynamoDBEvent; see Convert), one shard at a time and in stream order, and it follows
// the mapping's retry rules: a handler error delivers the whole batch again, and a partial batch
// response (BatchItemFailures) delivers again every record from the lowest sequence number it
// names. Parent shards are read to their end before their children.
//
// Its position survives a restart: after each batch it writes, for every shard, the sequence
// number of the last record that is done to a small JSON file, and it resumes with
// AFTER_SEQUENCE_NUMBER iterators from there (TRIM_HORIZON for a shard it has not read yet).
// A record is therefore delivered at least once — a crash between the handler's success and
// the file's write delivers the batch again — which is what the aggregator is built for.
package streampoller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// Client is the part of the DynamoDB Streams API the poller uses. *dynamodbstreams.Client
// implements it.
type Client interface {
	ListStreams(ctx context.Context, in *dynamodbstreams.ListStreamsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.ListStreamsOutput, error)
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Handler handles one batch of one shard, like a Lambda function on a DynamoDB stream.
type Handler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// Defaults of Config.
const (
	DefaultBatchSize     = 100
	DefaultPollInterval  = 200 * time.Millisecond
	DefaultRetryDelay    = time.Second
	describeInterval     = 5 * time.Second
	maxGetRecordsRecords = 1000
)

// Config configures a Poller.
type Config struct {
	// Client reaches DynamoDB Streams (DynamoDB Local's endpoint serves both APIs).
	Client Client
	// StreamARN is the stream to read. When empty, the newest stream of TableName is used,
	// waiting for the table to exist.
	StreamARN string
	TableName string
	// StatePath is the JSON file holding the position. Empty keeps it in memory only: a new
	// Poller then starts at TRIM_HORIZON.
	StatePath string
	// Handler receives the batches.
	Handler Handler
	// BatchSize is the most records per batch, 1 to 1000 (DefaultBatchSize when 0).
	BatchSize int
	// PollInterval is the wait after a round in which no shard had records
	// (DefaultPollInterval when 0).
	PollInterval time.Duration
	// RetryDelay is the wait before a failed batch is delivered again (DefaultRetryDelay when 0).
	RetryDelay time.Duration
	// Filter, when set, drops the records it returns false for before the handler sees them,
	// like an event source mapping's filter criteria. Dropped records count as done.
	Filter func(events.DynamoDBEventRecord) bool
	// Logger receives progress and errors (slog.Default() when nil).
	Logger *slog.Logger
}

// Poller reads one stream. Run it once.
type Poller struct {
	cfg   Config
	log   *slog.Logger
	state state
	iters map[string]*string // shard id -> the next iterator; nil: make one from the state
}

// state is the JSON of the state file.
type state struct {
	StreamARN string                 `json:"stream_arn"`
	Shards    map[string]*shardState `json:"shards"`
}

type shardState struct {
	// SequenceNumber is the last record of the shard that is done ("" when none).
	SequenceNumber string `json:"sequence_number,omitempty"`
	// Done means the shard is closed and every record of it is done.
	Done bool `json:"done,omitempty"`
}

// New checks cfg and returns a poller.
func New(cfg Config) (*Poller, error) {
	if cfg.Client == nil || cfg.Handler == nil {
		return nil, errors.New("streampoller: Client and Handler are required")
	}
	if cfg.StreamARN == "" && cfg.TableName == "" {
		return nil, errors.New("streampoller: StreamARN or TableName is required")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxGetRecordsRecords {
		return nil, fmt.Errorf("streampoller: BatchSize %d is not between 1 and %d", cfg.BatchSize, maxGetRecordsRecords)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	p := &Poller{cfg: cfg, log: cfg.Logger, iters: map[string]*string{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Run reads the stream until ctx is cancelled, then returns nil. It returns an error only when
// it cannot go on: the state file cannot be read or written.
func (p *Poller) Run(ctx context.Context) error {
	arn, err := p.resolve(ctx)
	if err != nil {
		return nilIfDone(ctx, err)
	}
	if err := p.load(arn); err != nil {
		return err
	}
	p.log.InfoContext(ctx, "stream poller started", "stream_arn", arn, "shards_known", len(p.state.Shards), "state", p.cfg.StatePath)
	var shards []types.Shard
	var described time.Time
	for ctx.Err() == nil {
		if time.Since(described) >= describeInterval {
			s, err := p.describe(ctx, arn)
			if err != nil {
				p.log.WarnContext(ctx, "describe stream failed", "error", err.Error())
				p.sleep(ctx, p.cfg.RetryDelay)
				continue
			}
			shards, described = s, time.Now()
		}
		known := make(map[string]bool, len(shards))
		for _, sh := range shards {
			known[aws.ToString(sh.ShardId)] = true
		}
		busy, closed := false, false
		for _, sh := range shards {
			id := aws.ToString(sh.ShardId)
			st := p.shard(id)
			if st.Done {
				continue
			}
			// A child waits for its parent, unless the parent has left the stream (trimmed).
			if parent := aws.ToString(sh.ParentShardId); parent != "" && known[parent] && !p.shard(parent).Done {
				continue
			}
			n, err := p.poll(ctx, arn, id)
			if err != nil {
				return err
			}
			busy = busy || n > 0
			closed = closed || p.shard(id).Done
		}
		if closed {
			described = time.Time{} // children may be waiting
		}
		if !busy {
			p.sleep(ctx, p.cfg.PollInterval)
		}
	}
	p.log.Info("stream poller stopped", "stream_arn", arn)
	return nil
}

// resolve returns the stream to read, waiting for the table's stream to appear.
func (p *Poller) resolve(ctx context.Context) (string, error) {
	if p.cfg.StreamARN != "" {
		return p.cfg.StreamARN, nil
	}
	logged := false
	for {
		arn, err := p.newestStream(ctx)
		if err == nil && arn != "" {
			return arn, nil
		}
		if !logged {
			msg := "no stream yet"
			if err != nil {
				msg = err.Error()
			}
			p.log.InfoContext(ctx, "waiting for the table's stream", "table", p.cfg.TableName, "reason", msg)
			logged = true
		}
		if !p.sleep(ctx, p.cfg.RetryDelay) {
			return "", ctx.Err()
		}
	}
}

func (p *Poller) newestStream(ctx context.Context) (string, error) {
	in := &dynamodbstreams.ListStreamsInput{TableName: aws.String(p.cfg.TableName)}
	best, label := "", ""
	for {
		out, err := p.cfg.Client.ListStreams(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list streams of %s: %w", p.cfg.TableName, err)
		}
		for _, s := range out.Streams {
			if aws.ToString(s.TableName) != p.cfg.TableName {
				continue
			}
			// Labels are ISO 8601 timestamps: the greatest is the newest stream.
			if l := aws.ToString(s.StreamLabel); best == "" || l > label {
				best, label = aws.ToString(s.StreamArn), l
			}
		}
		if out.LastEvaluatedStreamArn == nil {
			return best, nil
		}
		in.ExclusiveStartStreamArn = out.LastEvaluatedStreamArn
	}
}

func (p *Poller) describe(ctx context.Context, arn string) ([]types.Shard, error) {
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)}
	var shards []types.Shard
	for {
		out, err := p.cfg.Client.DescribeStream(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe stream: %w", err)
		}
		shards = append(shards, out.StreamDescription.Shards...)
		if out.StreamDescription.LastEvaluatedShardId == nil {
			return shards, nil
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
}

func (p *Poller) shard(id string) *shardState {
	st := p.state.Shards[id]
	if st == nil {
		st = &shardState{}
		p.state.Shards[id] = st
	}
	return st
}

// poll reads one batch of shard id and delivers it. It returns the number of records read and
// an error only when the state cannot be saved; other failures are logged and retried later.
func (p *Poller) poll(ctx context.Context, arn, id string) (int, error) {
	st := p.shard(id)
	it, ok := p.iterator(ctx, arn, id, st)
	if !ok {
		return 0, nil
	}
	out, err := p.cfg.Client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(int32(p.cfg.BatchSize))})
	if err != nil {
		p.iters[id] = nil
		var expired *types.ExpiredIteratorException
		if !errors.As(err, &expired) && ctx.Err() == nil {
			p.log.WarnContext(ctx, "get records failed", "shard", id, "error", err.Error())
		}
		return 0, nil
	}
	if len(out.Records) == 0 {
		return 0, p.advance(id, st, "", out.NextShardIterator)
	}
	if retryFrom := p.deliver(ctx, arn, id, out.Records); retryFrom != "" {
		// Everything before retryFrom is done; re-read from it after a pause.
		for _, r := range out.Records {
			if seq := aws.ToString(r.Dynamodb.SequenceNumber); seqLess(seq, retryFrom) {
				st.SequenceNumber = seq
			}
		}
		p.iters[id] = nil
		if err := p.save(); err != nil {
			return 0, err
		}
		p.sleep(ctx, p.cfg.RetryDelay)
		return len(out.Records), nil
	}
	last := aws.ToString(out.Records[len(out.Records)-1].Dynamodb.SequenceNumber)
	return len(out.Records), p.advance(id, st, last, out.NextShardIterator)
}

// iterator returns the shard's iterator: the one kept from the last read, or a new one after
// the shard's saved position (its start when none). It returns false when there is none to use
// now (logged; the next round tries again).
func (p *Poller) iterator(ctx context.Context, arn, id string, st *shardState) (*string, bool) {
	if it := p.iters[id]; it != nil {
		return it, true
	}
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
	if st.SequenceNumber != "" {
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.SequenceNumber = aws.String(st.SequenceNumber)
	}
	out, err := p.cfg.Client.GetShardIterator(ctx, in)
	var trimmed *types.TrimmedDataAccessException
	switch {
	case errors.As(err, &trimmed):
		// The position is older than the stream's retention: what follows it is gone.
		p.log.WarnContext(ctx, "stream position trimmed; continuing from the oldest record", "shard", id, "sequence_number", st.SequenceNumber)
		st.SequenceNumber = ""
		return nil, false
	case err != nil:
		if ctx.Err() == nil {
			p.log.WarnContext(ctx, "get shard iterator failed", "shard", id, "error", err.Error())
		}
		return nil, false
	}
	return out.ShardIterator, true
}

// deliver hands the records that pass the filter to the handler, and returns the sequence
// number to deliver again from ("" when the batch is done): the first record when the handler
// failed, the lowest reported failure otherwise.
func (p *Poller) deliver(ctx context.Context, arn, id string, records []types.Record) string {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, 0, len(records))}
	for _, r := range records {
		rec := Convert(arn, r)
		if p.cfg.Filter == nil || p.cfg.Filter(rec) {
			ev.Records = append(ev.Records, rec)
		}
	}
	if len(ev.Records) == 0 {
		return ""
	}
	resp, err := p.cfg.Handler(ctx, ev)
	switch {
	case err != nil:
		p.log.WarnContext(ctx, "handler failed; delivering the batch again", "shard", id, "records", len(ev.Records), "error", err.Error())
		return ev.Records[0].Change.SequenceNumber
	case len(resp.BatchItemFailures) > 0:
		retryFrom := lowestFailure(ev, resp)
		p.log.WarnContext(ctx, "handler reported failures; delivering again from the first", "shard", id, "records", len(ev.Records), "failures", len(resp.BatchItemFailures), "retry_from", retryFrom)
		return retryFrom
	}
	return ""
}

// advance records that the shard was read up to last ("" when nothing new was read) and keeps
// next, its iterator; a nil next means the shard is closed and finished. It saves the state
// when it changed.
func (p *Poller) advance(id string, st *shardState, last string, next *string) error {
	p.iters[id] = next
	if last != "" {
		st.SequenceNumber = last
	}
	if next == nil {
		st.Done = true
	}
	if last == "" && next != nil {
		return nil
	}
	return p.save()
}

// lowestFailure returns the sequence number from which Lambda would deliver again: the lowest
// one reported. An identifier that is empty or names no record of the batch fails the whole
// batch, as it does for Lambda.
func lowestFailure(ev events.DynamoDBEvent, resp events.DynamoDBEventResponse) string {
	in := make(map[string]bool, len(ev.Records))
	for _, r := range ev.Records {
		in[r.Change.SequenceNumber] = true
	}
	lowest := ""
	for _, f := range resp.BatchItemFailures {
		if !in[f.ItemIdentifier] {
			return ev.Records[0].Change.SequenceNumber
		}
		if lowest == "" || seqLess(f.ItemIdentifier, lowest) {
			lowest = f.ItemIdentifier
		}
	}
	return lowest
}

// seqLess compares two decimal sequence numbers numerically.
func seqLess(a, b string) bool { return storage.CompareSeq(a, b) < 0 }

func (p *Poller) load(arn string) error {
	p.state = state{StreamARN: arn, Shards: map[string]*shardState{}}
	if p.cfg.StatePath == "" {
		return nil
	}
	b, err := os.ReadFile(p.cfg.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("streampoller: read state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("streampoller: state file %s: %w", p.cfg.StatePath, err)
	}
	if s.StreamARN != arn {
		// The table was re-created: the old positions mean nothing in the new stream.
		p.log.Info("state file is for another stream; starting at the oldest record", "state_stream_arn", s.StreamARN)
		return nil
	}
	if s.Shards != nil {
		p.state.Shards = s.Shards
	}
	return nil
}

// save writes the state file atomically (a temporary file renamed over it).
func (p *Poller) save() error {
	if p.cfg.StatePath == "" {
		return nil
	}
	b, err := json.MarshalIndent(p.state, "", "  ")
	if err != nil {
		return fmt.Errorf("streampoller: encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.cfg.StatePath), filepath.Base(p.cfg.StatePath)+".*")
	if err != nil {
		return fmt.Errorf("streampoller: write state: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("streampoller: write state: %w", errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), p.cfg.StatePath); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("streampoller: write state: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func (p *Poller) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func nilIfDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
