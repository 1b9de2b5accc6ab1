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
// records twice. Here every bucket write raises the item's version v by one (storage.AttrVersion,
// in the same UpdateItem as the consumption), every snapshot item stores agg_ver, the highest
// version of its bucket it holds, and every write to it is conditional:
//
//   - the records of one bucket item that fall in one snapshot are folded into one write, which
//     sets agg_ver to the highest of their versions, on the condition that the stored agg_ver is
//     below the lowest of them;
//   - when the condition fails, DynamoDB returns the stored agg_ver with the failure (no read);
//     the records at or below it are dropped — the snapshot holds them — and the rest is
//     written under the same kind of condition.
//
// Why that is exact: DynamoDB Streams keeps the records of one item in the order of its
// modifications (in one shard, a parent shard before its children), and Lambda hands them over
// in that order (with a ParallelizationFactor above 1 too: order is kept per item); a failed
// batch is retried before any later record of the shard is delivered; and a snapshot's write is
// one item, atomic. So the records a snapshot holds are always exactly those of its bucket and
// window up to its agg_ver, and a record comes back only at or below it (a repeated batch,
// either half of a split batch, the records after a failed one) — then it is dropped — or above
// it, when it was never applied. The version is the item's own count of its writes, so this
// does not rest on how stream sequence numbers compare across a shard split (which AWS does not
// document); sequence numbers are used only within one batch, which is one shard's, to report
// which records to retry.
//
// A bucket item deleted and written again starts its versions at its write time in ns, above
// what the old item reached (storage.AttrVersion), so the snapshots of the window it is
// re-created in keep counting. Only if the limiters' clocks disagree by more than the old item's
// life does its first records look old; a reconciliation repairs that window.
//
// The dedup state lives in the snapshot itself rather than in separate AGG# checkpoint items
// written with it in a TransactWriteItems: a transaction costs 2 WCU per item, holds at most 100
// items and serialises a batch into few large requests; one conditional UpdateItem per snapshot
// costs 1 WCU (plus 1 on GSI2), has no size limit per batch and runs in parallel. Every write
// is one item, so nothing ever needs to be atomic across items. The AGG# prefix stays reserved.
//
// # Counters never overflow
//
// u#n is a running total of everything a bucket ever consumed; it passes 2^63 millitokens after
// 9,224 adjustments of the largest amount. Stream records, snapshot counters and query results
// are therefore read and summed in 128 bits (tokenbucket.Int128), which hold every integer
// DynamoDB stores (38 digits, 10^23 of the largest adjustments). The JSON of the admin API gives
// them as exact integers of any size. What one lease may hold is bounded instead
// (limiter.MaxLeaseTokens).
//
// # Records given up on (DLQ) and reconciliation
//
// The event source mapping gives a batch up after its retries or its record age are exhausted
// (see infra/): it sends the batch's shard and sequence number range, not the records, to the
// on-failure destination, and moves on. What then happens to the snapshots, exactly:
//
//   - the records given up are in neither snapshot that never got them: the window's hourly
//     and daily totals are short of them. A record whose hourly write succeeded and daily write
//     failed (or the reverse) leaves the two windows disagreeing;
//   - later records of the same bucket apply normally (their versions are higher); replaying
//     the given-up records by hand after them does not help: their versions are at or below
//     agg_ver, so they are taken as applied and dropped.
//
// Every snapshot also keeps its bucket's running totals as of the last record it holds
// (agg_ver, agg_at, totals, total_acq). Reconcile (and `go run ./cmd/usage-reconcile`)
// recomputes the hourly and daily snapshots of a bucket for a day from those totals and the
// bucket item itself: a window's usage is the running total at its last change less the
// running total at the last change before it. That is exact whatever records were lost within
// the day, except that a lost record that was the last change of its hour is counted in the
// next hour that has a change (the bucket item tells its total, not when each part happened).
// An alarm on the DLQ is the signal to run it for the days the batch's records fall in.
//
// # Records that cannot be processed
//
// A bucket record that cannot be read (a u# or acq that is not an integer, no ts, no version v —
// a write by a limiter older than bucket versions: deploy the functions together —, no new
// image, a MODIFY without an old image, a bad sequence number) will never become readable:
// retrying it
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
