package usage

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

func n(v int64) events.DynamoDBAttributeValue {
	return events.NewNumberAttribute(strconv.FormatInt(v, 10))
}

func bucketImage(ts, acq int64, u map[string]int64) map[string]events.DynamoDBAttributeValue {
	m := map[string]events.DynamoDBAttributeValue{
		"PK": events.NewStringAttribute("B#k1"), "SK": events.NewStringAttribute("B#gpt-4"),
		"ts": n(ts), "acq": n(acq), "v": n(ts + 1),
	}
	for l, v := range u {
		m["u#"+l] = n(v)
		m["e#"+l] = events.NewNumberAttribute("123456789012345678901234567890") // beyond 64 bits: not read
		m["k#"+l] = events.NewStringAttribute("1000/1000/1000")
	}
	return m
}

func record(name, seq string, newImg, oldImg map[string]events.DynamoDBAttributeValue) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{EventName: name, Change: events.DynamoDBStreamRecord{
		Keys:           map[string]events.DynamoDBAttributeValue{"PK": events.NewStringAttribute("B#k1"), "SK": events.NewStringAttribute("B#gpt-4")},
		SequenceNumber: seq, NewImage: newImg, OldImage: oldImg,
	}}
}

func TestParseRecord(t *testing.T) {
	old := bucketImage(1000, 5, map[string]int64{"rpm": 5000, "tpm": 70})
	c, err := ParseRecord(record("MODIFY", "42", bucketImage(2000, 4, map[string]int64{"rpm": 4000, "tpm": 70, "rpd": 3}), old))
	want := Change{EntityID: "k1", Resource: "gpt-4", Seq: "42", PaddedSeq: c.PaddedSeq, Version: 2001, At: 2000, PrevAt: 1000,
		Counters: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(-1000), "rpd": tokenbucket.I128(3)}, Acquires: -1,
		Totals: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(4000), "tpm": tokenbucket.I128(70), "rpd": tokenbucket.I128(3)}, TotalAcquires: 4}
	if err != nil || !reflect.DeepEqual(c, want) || len(c.PaddedSeq) != 48 {
		t.Fatalf("MODIFY: %+v %v", c, err)
	}
	// INSERT counts from zero.
	c, err = ParseRecord(record("INSERT", "1", bucketImage(5, 1, map[string]int64{"rpm": 1000}), nil))
	if err != nil || c.Counters["rpm"] != tokenbucket.I128(1000) || c.Acquires != 1 || c.PrevAt != 0 {
		t.Fatalf("INSERT: %+v %v", c, err)
	}
	// A counter dropped from the item is not a refund.
	c, err = ParseRecord(record("MODIFY", "2", bucketImage(6, 5, map[string]int64{"rpm": 5000}), old))
	if err != nil || !c.Zero() {
		t.Fatalf("dropped counter: %+v %v", c, err)
	}
	// REMOVE and other items are skipped.
	if _, err := ParseRecord(record("REMOVE", "3", nil, old)); !errors.Is(err, ErrRemoved) {
		t.Errorf("REMOVE: %v", err)
	}
	other := record("INSERT", "4", nil, nil)
	other.Change.Keys["PK"] = events.NewStringAttribute("E#k1")
	if _, err := ParseRecord(other); !errors.Is(err, ErrNotBucket) {
		t.Errorf("entity record: %v", err)
	}

	bad := map[string]events.DynamoDBEventRecord{}
	r := record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.NewImage["u#rpm"] = events.NewStringAttribute("1000")
	bad["string counter"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.NewImage["u#rpm"] = events.NewNumberAttribute("1.5")
	bad["fractional counter"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.NewImage["u#rpm"] = events.NewNumberAttribute("1" + strings.Repeat("0", 40))
	bad["counter beyond 128 bits"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	delete(r.Change.NewImage, "v")
	bad["no version"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	delete(r.Change.NewImage, "ts")
	bad["no ts"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.NewImage["acq"] = events.NewNullAttribute()
	bad["null acq"] = r
	bad["no new image"] = record("MODIFY", "5", nil, old)
	bad["MODIFY without old image"] = record("MODIFY", "5", bucketImage(7, 5, nil), nil)
	bad["sequence number not decimal"] = record("MODIFY", "5x", bucketImage(7, 5, nil), old)
	bad["unknown event"] = record("UPSERT", "5", bucketImage(7, 5, nil), old)
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.Keys["SK"] = events.NewStringAttribute("L#gpt-4")
	bad["bucket without B# sort key"] = r
	r = record("MODIFY", "5", bucketImage(7, 5, nil), old)
	r.Change.Keys["PK"] = events.NewStringAttribute("B#bad id")
	bad["invalid id"] = r
	r = record("MODIFY", "5", bucketImage(7, math.MinInt64, nil), bucketImage(6, 1, nil))
	bad["acq change overflows"] = r
	for name, r := range bad {
		var m *MalformedError
		if _, err := ParseRecord(r); !errors.As(err, &m) {
			t.Errorf("%s: %v, want MalformedError", name, err)
		}
	}
}

// Counters beyond 2^63 are read exactly: a running total that passed int64 still gives the
// right change, and so does a change that does not fit 64 bits.
func TestParseRecordBeyond64Bits(t *testing.T) {
	const big = "9223372036854775807000" // 1000 × (2^63 − 1)
	newImg := bucketImage(2000, 1, nil)
	newImg["u#tpm"] = events.NewNumberAttribute("9223372036854775807000")
	oldImg := bucketImage(1000, 1, nil)
	oldImg["u#tpm"] = events.NewNumberAttribute("9223372035854775807000") // 10^9 tokens less
	c, err := ParseRecord(record("MODIFY", "7", newImg, oldImg))
	if err != nil || c.Counters["tpm"] != tokenbucket.I128(1_000_000_000_000) || c.Totals["tpm"].String() != big {
		t.Fatalf("beyond 2^63: %+v %v", c, err)
	}
	c, err = ParseRecord(record("INSERT", "8", newImg, nil))
	if err != nil || c.Counters["tpm"].String() != big {
		t.Fatalf("INSERT beyond 2^63: %+v %v", c, err)
	}
}

func TestFoldSplitsOverflow(t *testing.T) {
	maxI128, _ := tokenbucket.ParseInt128("170141183460469231731687303715884105727")
	cs := []Change{
		{Counters: map[string]tokenbucket.Int128{"rpm": maxI128.Sub(tokenbucket.I128(1))}},
		{Counters: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(1)}, Acquires: 1},
		{Counters: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(1)}},
	}
	k, counters, acq := fold(cs)
	if k != 2 || counters["rpm"] != maxI128 || acq != 1 {
		t.Fatalf("fold = %d %v %d", k, counters, acq)
	}
	k, counters, _ = fold(cs[2:])
	if k != 1 || counters["rpm"] != tokenbucket.I128(1) {
		t.Fatalf("fold rest = %d %v", k, counters)
	}
	// Sums beyond 2^63 stay in one write.
	cs = []Change{
		{Counters: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(math.MaxInt64)}},
		{Counters: map[string]tokenbucket.Int128{"rpm": tokenbucket.I128(math.MaxInt64)}},
	}
	if k, counters, _ = fold(cs); k != 2 || counters["rpm"].String() != "18446744073709551614" {
		t.Fatalf("fold beyond 2^63 = %d %v", k, counters)
	}
}
