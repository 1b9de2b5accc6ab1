// Package usage turns the table's stream of bucket changes into exact hourly and daily usage
// snapshots, and reads them back for the admin API.
//
// # What a record says
//
// A bucket item (PK B#{entity}, SK B#{resource}) carries per limit n the running total u#n of
// millitokens consumed (acquires + adjustments − refunds), the running total acq of acquires
// (+1 per acquire, −1 per rollback) and ts, the Unix ms of the write by the limiter's clock. A
// stream record of the item therefore carries new u#n − old u#n and new acq − old acq, which
// happened at new ts. That change is added to the snapshot of the window containing new ts —
// the time of the change, not the record's ApproximateCreationDateTime, which is the time the
// stream saw it (seconds later, or in the next hour, for a write at 10:59:59.9).
//
// An INSERT has no old image: its counters count from 0. A REMOVE (entity deleted, TTL) is not
// consumption and is skipped. A record of any other item is skipped. See ParseRecord.
//
// # Exactly once
//
// Streams deliver records at least once: Lambda retries a batch, splits a failing batch in
// halves (BisectBatchOnFunctionError) and, after a partial failure, delivers everything from
// the first failed record on again. Counters that are simply added to would count those
// records twice. Here every snapshot item stores agg_seq, the highest stream sequence number it
// holds, and every write to it is conditional:
//
//   - the records of one bucket item that fall in one snapshot are folded into one write, which
//     sets agg_seq to the highest of their sequence numbers, on the condition that the stored
//     agg_seq is below the lowest of them;
//   - when the condition fails, DynamoDB returns the stored agg_seq with the failure (no read);
//     the records at or below it are dropped — the snapshot holds them — and the rest is
//     written under the same kind of condition.
//
// Why that is exact: DynamoDB Streams keeps the records of one item in the order of its
// modifications (in one shard, a parent shard before its children), and Lambda hands them over
// in that order (with a ParallelizationFactor above 1 too: order is kept per item); a failed
// batch is retried before any later record of the shard is delivered; and a snapshot's write is
// one item, atomic. So the records a snapshot holds are
// always exactly those of its bucket and window up to its agg_seq, and a record comes back only
// at or below it (a repeated batch, either half of a split batch, the records after a failed
// one) — then it is dropped — or above it, when it was never applied. Sequence numbers are
// decimal strings of up to 40 digits, compared as zero-padded strings (storage.PadSeq).
//
// The dedup state lives in the snapshot itself rather than in separate AGG# checkpoint items
// written with it in a TransactWriteItems: a transaction costs 2 WCU per item, holds at most 100
// items and serialises a batch into few large requests; one conditional UpdateItem per snapshot
// costs 1 WCU (plus 1 on GSI2), has no size limit per batch and runs in parallel. Every write
// is one item, so nothing ever needs to be atomic across items. The AGG# prefix stays reserved.
//
// What it does not cover: records the event source mapping gives up on (retries or record
// age exhausted; their stream position goes to the DLQ) are not counted, and replaying them by
// hand after later records of the same bucket and window were applied does not help: they are
// out of order, taken as already applied and dropped. An alarm on the DLQ is the signal.
//
// # Records that cannot be processed
//
// A bucket record that cannot be read (a u# or acq that is not an integer, no ts, no new image,
// a MODIFY without an old image, a bad sequence number) will never become readable: retrying it
// would block its shard until the record expires, holding up every later record of the shard.
// It is skipped with a WARN log line naming the record (event id, sequence number, reason; no
// image bodies) and counted in Stats.Malformed and the batch's log line. Failures that can pass
// — a throttled or failed write — are reported as BatchItemFailures and retried.
//
// # Writes
//
// A batch costs one UpdateItem per snapshot touched (entity × resource × window), whatever the
// number of records, plus one more for a snapshot whose existence was guessed wrong (the first
// write of a window guesses from the old image's ts) or that held some records already.
//
// # Units
//
// Snapshots store millitokens, exact. Query results give whole tokens (Snapshot.Counters) and
// the exact millitokens (Snapshot.MilliCounters).
package usage
