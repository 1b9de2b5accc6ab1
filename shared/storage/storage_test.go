package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/storage"
	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const now = int64(1_795_000_000_000)

var rpm = tokenbucket.Params{Capacity: 100_000, Amount: 100_000, Period: 60_000}

func ptr(v tokenbucket.Int128) *tokenbucket.Int128 { return &v }

func TestBucketWritePaths(t *testing.T) {
	ctx := context.Background()
	meter := ddbtest.NewMeter()
	tbl := ddbtest.NewTable(t, ddbtest.Client(t, meter.Option()))

	// A new bucket: SetFull to "full minus 1 token", creating the GSI2 keys.
	first := storage.BucketWrite{EntityID: "k1", Resource: "gpt-4", Now: now, Acquires: 1, Create: true,
		Limits: []storage.LimitWrite{{Name: "rpm", Mode: storage.SetFull, Params: rpm,
			Value: rpm.ChargeFull(now, 1000), Floor: rpm.Floor(now), Consumed: 1000}}}
	got, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{first}, storage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := got[0].Limits["rpm"]
	if lvl := rpm.Level(l.State, now); lvl != 99_000 || l.Consumed != tokenbucket.I128(1000) || got[0].Acquires != 1 || got[0].UpdatedAt != now {
		t.Fatalf("after first write: level %d, %+v", lvl, got[0])
	}

	// The same SetFull again fails: the bucket is no longer full. The error carries the item.
	_, err = tbl.WriteBuckets(ctx, []storage.BucketWrite{first}, storage.WriteOptions{})
	var cf *storage.ConditionFailedError
	if !errors.As(err, &cf) || cf.Failed[0].Current == nil || cf.Failed[0].Current.Limits["rpm"].State != l.State {
		t.Fatalf("want ConditionFailedError with the current item, got %v", err)
	}

	// A steady-state take: ADD under floor/ceiling conditions. 1 request, 1 WCU, no index write.
	meter.Reset()
	take := storage.BucketWrite{EntityID: "k1", Resource: "gpt-4", Now: now + 1, Acquires: 1,
		Limits: []storage.LimitWrite{{Name: "rpm", Mode: storage.Add, Params: rpm, Value: rpm.Delta(2000),
			Min: ptr(rpm.Floor(now + 1)), Max: ptr(rpm.Ceiling(now+1, 2000)), Consumed: 2000}}}
	got, err = tbl.WriteBuckets(ctx, []storage.BucketWrite{take}, storage.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lvl := rpm.Level(got[0].Limits["rpm"].State, now+1); lvl != 97_001 {
		t.Fatalf("level after take %d, want 97001", lvl)
	}
	u := meter.Total()
	if u.Requests != 1 || u.TableWCU != 1 || u.TableRCU != 0 || u.IndexWCU != 0 {
		t.Fatalf("steady-state take cost %+v, want 1 request, 1 WCU, 0 index", u)
	}

	// A take beyond the level fails its ceiling condition.
	big := take
	big.Limits = []storage.LimitWrite{{Name: "rpm", Mode: storage.Add, Params: rpm, Value: rpm.Delta(98_000),
		Min: ptr(rpm.Floor(now + 1)), Max: ptr(rpm.Ceiling(now+1, 98_000)), Consumed: 98_000}}
	if _, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{big}, storage.WriteOptions{}); !errors.As(err, &cf) {
		t.Fatalf("over-take: want ConditionFailedError, got %v", err)
	}

	// Two buckets in one transaction; a failed condition names the write that failed.
	other := first
	other.EntityID = "proj"
	ok := take
	ok.Now = now + 2
	ok.Limits[0].Min, ok.Limits[0].Max = ptr(rpm.Floor(now+2)), ptr(rpm.Ceiling(now+2, 2000))
	if _, err := tbl.WriteBuckets(ctx, []storage.BucketWrite{ok, other}, storage.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = tbl.WriteBuckets(ctx, []storage.BucketWrite{ok, other}, storage.WriteOptions{})
	if !errors.As(err, &cf) || len(cf.Failed) != 1 || cf.Failed[0].Index != 1 || cf.Failed[0].Current.EntityID != "proj" {
		t.Fatalf("want failure of write 1 only, got %v %+v", err, cf)
	}
	b, err := tbl.GetBucket(ctx, "k1", "gpt-4")
	if err != nil || b.Acquires != 3 || b.Limits["rpm"].Consumed != tokenbucket.I128(5000) {
		t.Fatalf("bucket after failed transaction: %+v %v", b, err)
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "key-123", "org/proj:gpt-4.1@us=1+2", "x_y"} {
		if err := storage.ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a#b", "has space", "tab\t", "é", string(make([]byte, 257))} {
		if err := storage.ValidateID(bad); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
	// Messages name the character as written, count characters, and carry no package prefix.
	for in, want := range map[string]string{
		"clé-1":                  "character 'é' (U+00E9) at position 3 is not allowed (use A-Z a-z 0-9 _ . : @ / + = -)",
		"ab\xff":                 "byte 3 is not UTF-8 (use A-Z a-z 0-9 _ . : @ / + = -)",
		"日本":                     "character '日' (U+65E5) at position 1 is not allowed (use A-Z a-z 0-9 _ . : @ / + = -)",
		"a\uFFFD":                "character '\uFFFD' (U+FFFD) at position 2 is not allowed (use A-Z a-z 0-9 _ . : @ / + = -)",
		"":                       "must not be empty",
		strings.Repeat("a", 257): "must be at most 256 characters, got 257",
	} {
		if err := storage.ValidateID(in); err == nil || err.Error() != want {
			t.Errorf("ValidateID(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client) // created once
	if err := tbl.CreateTable(context.Background()); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	out, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(tbl.Name())})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if len(d.GlobalSecondaryIndexes) != 2 || d.StreamSpecification == nil || d.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Fatalf("table %+v", d)
	}
	ttl, err := client.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tbl.Name())})
	if err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != storage.AttrTTL {
		t.Fatalf("TTL %+v %v", ttl, err)
	}
}

// A lease rolled back by an earlier version ("rolledback") reads as LeaseRolledBack.
func TestDecodeLeaseLegacyState(t *testing.T) {
	item := map[string]types.AttributeValue{"state": &types.AttributeValueMemberS{Value: "rolledback"}}
	if got, err := storage.DecodeLease(item); err != nil || got.State != "rolled_back" {
		t.Fatalf("state %+v %v", got, err)
	}
}

// Stored items are decoded one strict way: an attribute of the wrong type is a *DecodeError
// naming it, never read as absent or 0.
func TestStrictDecoding(t *testing.T) {
	ctx := context.Background()
	client := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, client)
	sv := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	nv := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put := func(item map[string]types.AttributeValue) {
		t.Helper()
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl.Name()), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, err error, attr string) {
		t.Helper()
		var de *storage.DecodeError
		if !errors.As(err, &de) || de.Attr != attr {
			t.Errorf("%s: %v, want a DecodeError on %s", what, err, attr)
		}
	}
	put(map[string]types.AttributeValue{"PK": sv("E#e1"), "SK": sv("#META"), "entity_id": sv("e1"), "created_at": sv("yesterday")})
	_, err := tbl.GetEntity(ctx, "e1")
	check("entity with a string created_at", err, "created_at")

	put(map[string]types.AttributeValue{"PK": sv("SYSTEM"), "SK": sv("L#"), "limits": &types.AttributeValueMemberL{Value: []types.AttributeValue{
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"name": sv("rpm"), "capacity": nv("1.5")}}}}})
	_, err = tbl.GetLimits(ctx, storage.Scope{})
	check("limits with a fractional capacity", err, "capacity")

	put(map[string]types.AttributeValue{"PK": sv("B#k"), "SK": sv("B#r"), "acq": sv("1")})
	_, err = tbl.GetBucket(ctx, "k", "r")
	check("bucket with a string acq", err, "acq")
	put(map[string]types.AttributeValue{"PK": sv("B#k"), "SK": sv("B#r"), "e#rpm": nv("1"), "k#rpm": sv("1/1/1"), "u#rpm": nv("0.5")})
	_, err = tbl.GetBucket(ctx, "k", "r")
	check("bucket with a fractional u#", err, "u#rpm")

	_, err = storage.DecodeLease(map[string]types.AttributeValue{"state": sv("open"), "expires_at": &types.AttributeValueMemberBOOL{Value: true}})
	check("lease with a boolean expires_at", err, "expires_at")
	if err != nil && strings.Contains(err.Error(), "types.") {
		t.Errorf("the message names a Go type: %v", err)
	}
}
