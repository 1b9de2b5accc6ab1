package usage

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Change is what one stream record of a bucket item says about consumption: the change of each
// limit's consumed counter and of the acquire counter, at the time of the write.
type Change struct {
	EntityID string
	Resource string
	// Seq is the record's sequence number as DynamoDB gave it; PaddedSeq the same number
	// zero-padded to storage.SeqWidth digits, so that string order is stream order within a
	// shard (what a batch's failures are reported by).
	Seq       string
	PaddedSeq string
	// Version is the bucket item's version after the write (storage.AttrVersion): one more than
	// the previous write's, whatever shard the records of either came through. Snapshots apply
	// changes in version order.
	Version int64
	// At is the time of the write by the limiter's clock (the new image's ts, Unix ms).
	At int64
	// PrevAt is the old image's ts (Unix ms), 0 when there is no old image.
	PrevAt int64
	// Counters holds, per limit, new u#n − old u#n in millitokens. Limits whose counter did
	// not change are absent. Counters are read in 128 bits: a running total passes 2^63.
	Counters map[string]tokenbucket.Int128
	// Acquires is new acq − old acq.
	Acquires int64
	// Totals and TotalAcquires are the new image's u#n counters and acq: the bucket's running
	// totals after the write, which snapshots keep for reconciliation.
	Totals        map[string]tokenbucket.Int128
	TotalAcquires int64
}

// Zero reports whether the change consumed nothing: no counter and no acquire changed.
func (c Change) Zero() bool { return len(c.Counters) == 0 && c.Acquires == 0 }

// Reasons a record carries no consumption (see ParseRecord).
var (
	// ErrNotBucket means the record is of an item that is not a bucket (PK not B#...).
	ErrNotBucket = errors.New("usage: not a bucket record")
	// ErrRemoved means the record is the deletion of a bucket (entity deleted, TTL): usage
	// is what was consumed, and a deletion consumes nothing.
	ErrRemoved = errors.New("usage: bucket removed")
)

// MalformedError means a bucket record cannot be read: a missing new image, a counter that is
// not an integer, a bad sequence number. Such a record can never be processed.
type MalformedError struct {
	Reason string
}

// Error says why the record cannot be read.
func (e *MalformedError) Error() string { return "usage: malformed bucket record: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// ParseRecord reads the consumption change of one stream record. It returns ErrNotBucket for a
// record of another kind of item, ErrRemoved for a REMOVE, and *MalformedError for a bucket
// record it cannot read.
//
// The change of limit n is new u#n − old u#n with an absent old counter read as 0 (an INSERT
// has no old image at all). A counter present in the old image but absent from the new one was
// dropped, not refunded, and contributes nothing: u#n is a running total that only a write of
// the limit itself moves.
func ParseRecord(r events.DynamoDBEventRecord) (Change, error) {
	c, err := parseKeys(r)
	if err != nil {
		return Change{}, err
	}
	newImg, oldImg, err := images(r)
	if err != nil {
		return Change{}, err
	}
	if err := c.readTimes(newImg, oldImg); err != nil {
		return Change{}, err
	}
	if err := c.readCounters(newImg, oldImg); err != nil {
		return Change{}, err
	}
	return c, nil
}

// parseKeys reads the record's item keys, kind and sequence number.
func parseKeys(r events.DynamoDBEventRecord) (Change, error) {
	pk, ok := stringAttr(r.Change.Keys, storage.AttrPK)
	if !ok {
		return Change{}, malformed("keys have no string PK")
	}
	if !strings.HasPrefix(pk, storage.PrefixBucket) {
		return Change{}, ErrNotBucket
	}
	sk, ok := stringAttr(r.Change.Keys, storage.AttrSK)
	if !ok || !strings.HasPrefix(sk, storage.PrefixBucket) {
		return Change{}, malformed("bucket keys have no B# sort key")
	}
	c := Change{
		EntityID: strings.TrimPrefix(pk, storage.PrefixBucket),
		Resource: strings.TrimPrefix(sk, storage.PrefixBucket),
		Seq:      r.Change.SequenceNumber,
	}
	if storage.ValidateID(c.EntityID) != nil || storage.ValidateID(c.Resource) != nil {
		return Change{}, malformed("bucket key holds an invalid id")
	}
	if r.EventName == string(events.DynamoDBOperationTypeRemove) {
		return Change{}, ErrRemoved
	}
	var err error
	if c.PaddedSeq, err = storage.PadSeq(c.Seq); err != nil {
		return Change{}, malformed("bad sequence number")
	}
	return c, nil
}

// images returns the record's new image and its old one (nil for an INSERT).
func images(r events.DynamoDBEventRecord) (newImg, oldImg map[string]events.DynamoDBAttributeValue, err error) {
	switch r.EventName {
	case string(events.DynamoDBOperationTypeInsert):
	case string(events.DynamoDBOperationTypeModify):
		if r.Change.OldImage == nil {
			return nil, nil, malformed("MODIFY without an old image (the stream must be NEW_AND_OLD_IMAGES)")
		}
		oldImg = r.Change.OldImage
	default:
		return nil, nil, malformed("unknown event name %q", r.EventName)
	}
	if r.Change.NewImage == nil {
		return nil, nil, malformed("no new image (the stream must be NEW_AND_OLD_IMAGES)")
	}
	return r.Change.NewImage, oldImg, nil
}

// readTimes reads the write's time, the previous write's and the item's version.
func (c *Change) readTimes(newImg, oldImg map[string]events.DynamoDBAttributeValue) error {
	at, present, err := intAttr(newImg, storage.AttrUpdatedAt)
	if err != nil || !present {
		return malformed("new image has no integer %s", storage.AttrUpdatedAt)
	}
	if at < 0 || at > storage.MaxUsageMillis {
		return malformed("%s %d is out of range", storage.AttrUpdatedAt, at)
	}
	c.At = at
	if prev, ok, err := intAttr(oldImg, storage.AttrUpdatedAt); err == nil && ok && prev >= 0 && prev <= storage.MaxUsageMillis {
		c.PrevAt = prev
	}
	v, present, err := intAttr(newImg, storage.AttrVersion)
	if err != nil || !present || v <= 0 {
		return malformed("new image has no positive integer %s (a write by a limiter older than bucket versions)", storage.AttrVersion)
	}
	c.Version = v
	return nil
}

// readCounters reads the acquire counter and every limit's consumed counter, old and new.
func (c *Change) readCounters(newImg, oldImg map[string]events.DynamoDBAttributeValue) error {
	newAcq, _, err := intAttr(newImg, storage.AttrAcquires)
	if err != nil {
		return malformed("new %s: %v", storage.AttrAcquires, err)
	}
	oldAcq, _, err := intAttr(oldImg, storage.AttrAcquires)
	if err != nil {
		return malformed("old %s: %v", storage.AttrAcquires, err)
	}
	var ok bool
	if c.Acquires, ok = sub(newAcq, oldAcq); !ok {
		return malformed("%s change overflows", storage.AttrAcquires)
	}
	c.TotalAcquires = newAcq
	for name := range newImg {
		limit, ok := strings.CutPrefix(name, storage.AttrConsumed)
		if !ok {
			continue
		}
		if limit == "" {
			return malformed("counter attribute without a limit name")
		}
		nv, err := int128Attr(newImg, name)
		if err != nil {
			return malformed("new %s: %v", name, err)
		}
		ov, err := int128Attr(oldImg, name)
		if err != nil {
			return malformed("old %s: %v", name, err)
		}
		if c.Totals == nil {
			c.Totals = map[string]tokenbucket.Int128{}
		}
		c.Totals[limit] = nv
		// Both are within DynamoDB's 38 digits, so the difference fits 128 bits.
		if d := nv.Sub(ov); d.Sign() != 0 {
			if c.Counters == nil {
				c.Counters = map[string]tokenbucket.Int128{}
			}
			c.Counters[limit] = d
		}
	}
	return nil
}

func stringAttr(m map[string]events.DynamoDBAttributeValue, name string) (string, bool) {
	v, ok := m[name]
	if !ok || v.DataType() != events.DataTypeString {
		return "", false
	}
	return v.String(), true
}

// intAttr reads an integer Number attribute. Absent is (0, false, nil); a value of another type
// or a Number that is not an int64 is an error.
func intAttr(m map[string]events.DynamoDBAttributeValue, name string) (int64, bool, error) {
	v, ok := m[name]
	if !ok {
		return 0, false, nil
	}
	if v.DataType() != events.DataTypeNumber {
		return 0, true, errors.New("not a number")
	}
	x, err := strconv.ParseInt(v.Number(), 10, 64)
	if err != nil {
		return 0, true, errors.New("not an integer that fits 64 bits")
	}
	return x, true, nil
}

// int128Attr reads an integer Number attribute in 128 bits (every integer DynamoDB stores);
// absent is 0.
func int128Attr(m map[string]events.DynamoDBAttributeValue, name string) (tokenbucket.Int128, error) {
	v, ok := m[name]
	if !ok {
		return tokenbucket.Int128{}, nil
	}
	if v.DataType() != events.DataTypeNumber {
		return tokenbucket.Int128{}, errors.New("not a number")
	}
	x, err := tokenbucket.ParseInt128(v.Number())
	if err != nil {
		return tokenbucket.Int128{}, errors.New("not an integer")
	}
	return x, nil
}

// sub returns a − b and whether it did not overflow.
func sub(a, b int64) (int64, bool) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, false
	}
	return d, true
}

// add returns a + b and whether it did not overflow.
func add(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}
