package usage

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// Change is what one stream record of a bucket item says about consumption: the change of each
// limit's consumed counter and of the acquire counter, at the time of the write.
type Change struct {
	EntityID string
	Resource string
	// Seq is the record's sequence number as DynamoDB gave it; PaddedSeq the same number
	// zero-padded to storage.SeqWidth digits, so that string order is stream order.
	Seq       string
	PaddedSeq string
	// At is the time of the write by the limiter's clock (the new image's ts, Unix ms).
	At int64
	// PrevAt is the old image's ts (Unix ms), 0 when there is no old image.
	PrevAt int64
	// Counters holds, per limit, new u#n − old u#n in millitokens. Limits whose counter did
	// not change are absent.
	Counters map[string]int64
	// Acquires is new acq − old acq.
	Acquires int64
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
	var old map[string]events.DynamoDBAttributeValue
	switch r.EventName {
	case string(events.DynamoDBOperationTypeInsert):
	case string(events.DynamoDBOperationTypeModify):
		if r.Change.OldImage == nil {
			return Change{}, malformed("MODIFY without an old image (the stream must be NEW_AND_OLD_IMAGES)")
		}
		old = r.Change.OldImage
	default:
		return Change{}, malformed("unknown event name %q", r.EventName)
	}
	if r.Change.NewImage == nil {
		return Change{}, malformed("no new image (the stream must be NEW_AND_OLD_IMAGES)")
	}
	newImg := r.Change.NewImage
	at, present, err := intAttr(newImg, storage.AttrUpdatedAt)
	if err != nil || !present {
		return Change{}, malformed("new image has no integer %s", storage.AttrUpdatedAt)
	}
	if at < 0 || at > storage.MaxUsageMillis {
		return Change{}, malformed("%s %d is out of range", storage.AttrUpdatedAt, at)
	}
	c.At = at
	if old != nil {
		if prev, ok, err := intAttr(old, storage.AttrUpdatedAt); err == nil && ok && prev >= 0 && prev <= storage.MaxUsageMillis {
			c.PrevAt = prev
		}
	}
	newAcq, _, err := intAttr(newImg, storage.AttrAcquires)
	if err != nil {
		return Change{}, malformed("new %s: %v", storage.AttrAcquires, err)
	}
	oldAcq, _, err := intAttr(old, storage.AttrAcquires)
	if err != nil {
		return Change{}, malformed("old %s: %v", storage.AttrAcquires, err)
	}
	if c.Acquires, ok = sub(newAcq, oldAcq); !ok {
		return Change{}, malformed("%s change overflows", storage.AttrAcquires)
	}
	for name := range newImg {
		limit, ok := strings.CutPrefix(name, storage.AttrConsumed)
		if !ok {
			continue
		}
		if limit == "" {
			return Change{}, malformed("counter attribute without a limit name")
		}
		nv, _, err := intAttr(newImg, name)
		if err != nil {
			return Change{}, malformed("new %s: %v", name, err)
		}
		ov, _, err := intAttr(old, name)
		if err != nil {
			return Change{}, malformed("old %s: %v", name, err)
		}
		d, ok := sub(nv, ov)
		if !ok {
			return Change{}, malformed("%s change overflows", name)
		}
		if d != 0 {
			if c.Counters == nil {
				c.Counters = map[string]int64{}
			}
			c.Counters[limit] = d
		}
	}
	return c, nil
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
