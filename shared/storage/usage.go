package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// Usage snapshots.
//
// A snapshot item holds what one entity consumed of one resource in one window (an hour or a
// day, UTC):
//
//	PK     U#{entity}
//	SK     U#{resource}#{window}#{window_start}      window_start like 2026-11-26T19:00:00Z
//	GSI2PK R#{resource}
//	GSI2SK U#{window}#{window_start}#{entity}
//	entity_id, resource, window, window_start   (String)
//	counters   Map of limit name -> Number: net millitokens consumed in the window, exact
//	acquires   Number: net acquires in the window
//	agg_ver    Number: the highest bucket version (the bucket's v) the item holds (see AddUsage)
//	tot_ver    Number: the bucket version of the last change the item holds (agg_ver, but for
//	           a reconciled item, whose agg_ver covers what reconciliation counted elsewhere)
//	agg_at     Number: the bucket's ts at tot_ver (Unix ms)
//	totals     Map of limit name -> Number: the bucket's u# counters at tot_ver
//	total_acq  Number: the bucket's acq at tot_ver
//	ttl        Number: epoch seconds at which DynamoDB may delete the item
//
// window_start is fixed-width RFC 3339, so the string order of the sort keys is the time order
// and a time range is a key range.

// Attribute names of a usage snapshot item.
const (
	AttrEntityID       = "entity_id"
	AttrResource       = "resource"
	AttrWindow         = "window"
	AttrWindowStart    = "window_start"
	AttrCounters       = "counters"
	AttrUsageAcq       = "acquires"
	AttrAppliedVersion = "agg_ver"
	AttrTotalsVersion  = "tot_ver"
	AttrAppliedAt      = "agg_at"
	AttrTotals         = "totals"
	AttrTotalAcq       = "total_acq"
)

// Window is the length of a usage snapshot's time window. Windows are aligned to UTC.
type Window string

// The snapshot windows.
const (
	WindowHourly Window = "hourly"
	WindowDaily  Window = "daily"
)

// Windows returns every window, shortest first.
func Windows() []Window { return []Window{WindowHourly, WindowDaily} }

// Valid reports whether w is one of Windows.
func (w Window) Valid() bool { return w == WindowHourly || w == WindowDaily }

// Millis returns the window's length in milliseconds (0 for an invalid window).
func (w Window) Millis() int64 {
	switch w {
	case WindowHourly:
		return 3_600_000
	case WindowDaily:
		return 86_400_000
	}
	return 0
}

// Start returns the start (Unix ms) of the window that contains the instant ms (Unix ms). It
// rounds toward minus infinity, so instants before 1970 land in the right window too.
func (w Window) Start(ms int64) int64 {
	l := w.Millis()
	if l == 0 {
		return ms
	}
	q := ms / l
	if ms%l != 0 && ms < 0 {
		q--
	}
	return q * l
}

// WindowStartLayout is the layout of window_start: RFC 3339 in UTC with whole seconds and a
// four-digit year, so that string order is time order.
const WindowStartLayout = "2006-01-02T15:04:05Z"

// MinUsageMillis and MaxUsageMillis bound the instants (Unix ms) a window_start can express
// with a four-digit year: 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
const (
	MinUsageMillis int64 = -62_167_219_200_000
	MaxUsageMillis int64 = 253_402_300_799_999
)

// FormatWindowStart formats a window start (Unix ms) as stored in window_start.
func FormatWindowStart(ms int64) string { return time.UnixMilli(ms).UTC().Format(WindowStartLayout) }

// ParseWindowStart parses a window_start value back to Unix ms.
func ParseWindowStart(v string) (int64, error) {
	t, err := time.Parse(WindowStartLayout, v)
	if err != nil || t.Format(WindowStartLayout) != v {
		return 0, fmt.Errorf("storage: bad window start %q", v)
	}
	return t.UnixMilli(), nil
}

// SeqWidth is the width to which stream sequence numbers are zero-padded before they are stored
// or compared, so that string order is numeric order. DynamoDB documents sequence numbers of 21
// to 40 digits; the spare digits leave room should that grow. Changing it would break the
// comparison with values already stored.
const SeqWidth = 48

// PadSeq returns a stream sequence number zero-padded to SeqWidth digits. It fails when seq is
// empty, not all decimal digits, or longer than SeqWidth.
func PadSeq(seq string) (string, error) {
	if len(seq) == 0 || len(seq) > SeqWidth {
		return "", fmt.Errorf("storage: sequence number %q must have 1 to %d digits", seq, SeqWidth)
	}
	for i := 0; i < len(seq); i++ {
		if seq[i] < '0' || seq[i] > '9' {
			return "", fmt.Errorf("storage: sequence number %q is not decimal", seq)
		}
	}
	return strings.Repeat("0", SeqWidth-len(seq)) + seq, nil
}

// CompareSeq compares two stream sequence numbers (decimal digit strings, as PadSeq accepts)
// numerically: -1 when a < b, 0 when equal, +1 when a > b. Sequence numbers order records
// within one shard only.
func CompareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// usageSK returns the sort key of a snapshot.
func usageSK(resource string, w Window, start int64) string {
	return PrefixUsage + resource + Separator + string(w) + Separator + FormatWindowStart(start)
}

func usageKey(entity, resource string, w Window, start int64) map[string]types.AttributeValue {
	return key(PrefixUsage+entity, usageSK(resource, w, start))
}

func usageGSI2SK(entity string, w Window, start int64) string {
	return PrefixUsage + string(w) + Separator + FormatWindowStart(start) + Separator + entity
}

// UsageWrite adds the usage of a run of stream records of one bucket item to one snapshot.
//
// Exactly-once rests on the bucket item's version (AttrVersion), which every write of the item
// raises by one: every snapshot write stores LastVersion in the item (agg_ver), and a write that
// updates an existing item requires the stored value to be below FirstVersion. Records are
// applied to a snapshot in version order, so the stored value says which records the item
// holds already; a write that repeats any of them fails its condition, and the caller drops
// those records and retries with the rest (see UsageConflictError). Versions are the item's
// own, so the order does not rest on stream sequence numbers (which AWS orders within a shard
// only, not across a shard split).
type UsageWrite struct {
	EntityID     string
	Resource     string
	Window       Window
	WindowStart  int64                         // Unix ms; a multiple of the window's length
	Counters     map[string]tokenbucket.Int128 // millitokens added, by limit name
	Acquires     int64                         // added to acquires
	FirstVersion int64                         // the lowest bucket version of the records
	LastVersion  int64                         // the highest
	// LastAt, Totals and TotalAcquires describe the bucket after the record of LastVersion: its
	// ts, its u# counters and its acq. The snapshot keeps them (agg_at, totals, total_acq) so
	// that a reconciliation can recompute windows from the bucket's running counters.
	LastAt        int64
	Totals        map[string]tokenbucket.Int128
	TotalAcquires int64
	Expires       int64 // ttl: epoch seconds
	// Create writes a new item and requires that none exists; otherwise the write updates an
	// existing item and requires that it exists. The caller guesses; a wrong guess fails the
	// condition with *UsageConflictError, at no read cost, and the caller retries with the truth.
	Create bool
}

// UsageConflictError reports that a UsageWrite's condition failed. Nothing was written.
type UsageConflictError struct {
	Exists         bool  // whether the snapshot exists
	AppliedVersion int64 // its agg_ver when it exists (0 when absent)
}

// Error says what the snapshot holds.
func (e *UsageConflictError) Error() string {
	if !e.Exists {
		return "storage: usage snapshot does not exist"
	}
	return fmt.Sprintf("storage: usage snapshot already holds bucket versions up to %d", e.AppliedVersion)
}

func int128Map(m map[string]tokenbucket.Int128) *types.AttributeValueMemberM {
	out := make(map[string]types.AttributeValue, len(m))
	for name, v := range m {
		out[name] = n(v.String())
	}
	return &types.AttributeValueMemberM{Value: out}
}

// AddUsage applies w with one conditional UpdateItem (1 WCU for a small item, plus 1 on GSI2).
// A failed condition returns *UsageConflictError with the item's state, taken from the failed
// request (ReturnValuesOnConditionCheckFailure), so no read is needed.
func (t *Table) AddUsage(ctx context.Context, w UsageWrite) error {
	if !w.Window.Valid() {
		return fmt.Errorf("storage: invalid window %q", w.Window)
	}
	names := map[string]string{"#ver": AttrAppliedVersion, "#tver": AttrTotalsVersion, "#at": AttrAppliedAt, "#tot": AttrTotals, "#tacq": AttrTotalAcq, "#ttl": AttrTTL}
	values := map[string]types.AttributeValue{
		":last": num(w.LastVersion), ":at": num(w.LastAt), ":tot": int128Map(w.Totals), ":tacq": num(w.TotalAcquires), ":ttl": num(w.Expires),
	}
	limits := make([]string, 0, len(w.Counters))
	for name := range w.Counters {
		limits = append(limits, name)
	}
	sort.Strings(limits) // a stable expression: easier to read in logs and tests
	set := []string{"#ver = :last", "#tver = :last", "#at = :at", "#tot = :tot", "#tacq = :tacq", "#ttl = :ttl"}
	var update, cond string
	if w.Create {
		names["#c"], names["#acq"] = AttrCounters, AttrUsageAcq
		names["#e"], names["#r"], names["#w"], names["#ws"] = AttrEntityID, AttrResource, AttrWindow, AttrWindowStart
		names["#g2pk"], names["#g2sk"] = AttrGSI2PK, AttrGSI2SK
		values[":e"], values[":r"], values[":w"] = s(w.EntityID), s(w.Resource), s(string(w.Window))
		values[":ws"] = s(FormatWindowStart(w.WindowStart))
		values[":g2pk"], values[":g2sk"] = s(PrefixResource+w.Resource), s(usageGSI2SK(w.EntityID, w.Window, w.WindowStart))
		values[":m"] = int128Map(w.Counters)
		values[":acq"] = num(w.Acquires)
		set = append(set, "#e = :e", "#r = :r", "#w = :w", "#ws = :ws", "#g2pk = :g2pk", "#g2sk = :g2sk", "#c = :m", "#acq = :acq")
		update = "SET " + strings.Join(set, ", ")
		cond = "attribute_not_exists(" + AttrPK + ")"
	} else {
		// A counter inside the map is SET to itself plus the amount; if_not_exists starts a
		// limit the window has not seen yet at 0. The map exists: every create writes it.
		if len(limits) > 0 {
			names["#c"], values[":z"] = AttrCounters, num(0)
		}
		for i, name := range limits {
			nk, vk := fmt.Sprintf("#l%d", i), fmt.Sprintf(":v%d", i)
			names[nk] = name
			values[vk] = n(w.Counters[name].String())
			set = append(set, fmt.Sprintf("#c.%s = if_not_exists(#c.%s, :z) + %s", nk, nk, vk))
		}
		update = "SET " + strings.Join(set, ", ")
		if w.Acquires != 0 {
			names["#acq"], values[":acq"] = AttrUsageAcq, num(w.Acquires)
			update += " ADD #acq :acq"
		}
		values[":first"] = num(w.FirstVersion)
		cond = "attribute_exists(" + AttrPK + ") AND (attribute_not_exists(#ver) OR #ver < :first)"
	}
	_, err := t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(t.name),
		Key:                                 usageKey(w.EntityID, w.Resource, w.Window, w.WindowStart),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		c := &UsageConflictError{Exists: len(ccf.Item) > 0}
		if c.Exists {
			if c.AppliedVersion, err = Int64Attr(ccf.Item, AttrAppliedVersion); err != nil {
				return fmt.Errorf("storage: usage snapshot %s/%s %s %s: %w", w.EntityID, w.Resource, w.Window, FormatWindowStart(w.WindowStart), err)
			}
		}
		return c
	}
	return fmt.Errorf("add usage %s/%s %s %s: %w", w.EntityID, w.Resource, w.Window, FormatWindowStart(w.WindowStart), err)
}

// UsageSnapshot is a stored snapshot, in the units stored: millitokens.
type UsageSnapshot struct {
	EntityID    string
	Resource    string
	Window      Window
	WindowStart int64                         // Unix ms
	Counters    map[string]tokenbucket.Int128 // net millitokens consumed, by limit name
	Acquires    int64
	// AppliedVersion is the highest bucket version the snapshot holds (agg_ver); the bucket as of
	// the snapshot's last change is TotalsVersion, AppliedAt, Totals and TotalAcquires (its
	// version, ts, u# counters and acq). QueryUsage leaves them empty (GSI2 does not project
	// them); ReadUsage reads them. AppliedVersion is 0 for a snapshot written before versions
	// existed.
	AppliedVersion int64
	TotalsVersion  int64
	AppliedAt      int64
	Totals         map[string]tokenbucket.Int128
	TotalAcquires  int64
}

// UsageCursor names a snapshot; a query resumes after it.
type UsageCursor struct {
	EntityID    string
	Resource    string
	Window      Window
	WindowStart int64 // Unix ms
}

// UsageQuery selects snapshots of one window kind whose window_start lies in [From, To].
//
// With EntityID set it reads the entity's partition: one resource when Resource is set (a key
// range), every resource otherwise (the partition is read and filtered by window and time).
// With only Resource set it reads GSI2: every entity's snapshots of the resource, in time order.
type UsageQuery struct {
	EntityID string
	Resource string
	Window   Window
	From, To int64 // Unix ms, inclusive bounds on window_start
	Limit    int   // at most this many snapshots (> 0)
	After    *UsageCursor
}

// UsagePage is one page of a usage query. Next is nil when no snapshot follows.
type UsagePage struct {
	Snapshots []UsageSnapshot
	Next      *UsageCursor
}

// maxQueryCalls bounds the Query requests one page makes when a filter drops items, so that a
// page returns in bounded time; the caller continues with Next.
const maxQueryCalls = 8

// QueryUsage returns one page of snapshots. It may return fewer than Limit snapshots together
// with a Next cursor; the caller stops when Next is nil.
func (t *Table) QueryUsage(ctx context.Context, q UsageQuery) (UsagePage, error) {
	if !q.Window.Valid() {
		return UsagePage{}, fmt.Errorf("storage: invalid window %q", q.Window)
	}
	if q.Limit <= 0 {
		return UsagePage{}, errors.New("storage: usage query limit must be positive")
	}
	if q.EntityID == "" && q.Resource == "" {
		return UsagePage{}, errors.New("storage: usage query needs an entity or a resource")
	}
	from := FormatWindowStart(clampMillis(q.From))
	to := FormatWindowStart(clampMillis(q.To))
	names := map[string]string{
		"#e": AttrEntityID, "#r": AttrResource, "#w": AttrWindow, "#ws": AttrWindowStart,
		"#c": AttrCounters, "#acq": AttrUsageAcq, "#pk": AttrPK,
	}
	values := map[string]types.AttributeValue{}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(t.name),
		ProjectionExpression:     aws.String("#e, #r, #w, #ws, #c, #acq"),
		ExpressionAttributeNames: names,
	}
	filtered := false
	switch {
	case q.EntityID != "" && q.Resource != "":
		names["#sk"] = AttrSK
		values[":pk"] = s(PrefixUsage + q.EntityID)
		values[":lo"] = s(PrefixUsage + q.Resource + Separator + string(q.Window) + Separator + from)
		values[":hi"] = s(PrefixUsage + q.Resource + Separator + string(q.Window) + Separator + to)
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi")
	case q.EntityID != "":
		names["#sk"] = AttrSK
		values[":pk"] = s(PrefixUsage + q.EntityID)
		values[":pre"] = s(PrefixUsage)
		values[":win"] = s(string(q.Window))
		values[":lo"], values[":hi"] = s(from), s(to)
		in.KeyConditionExpression = aws.String("#pk = :pk AND begins_with(#sk, :pre)")
		in.FilterExpression = aws.String("#w = :win AND #ws BETWEEN :lo AND :hi")
		filtered = true
	default:
		delete(names, "#pk")
		names["#gpk"], names["#gsk"] = AttrGSI2PK, AttrGSI2SK
		in.IndexName = aws.String(IndexGSI2)
		values[":pk"] = s(PrefixResource + q.Resource)
		values[":lo"] = s(PrefixUsage + string(q.Window) + Separator + from + Separator)
		// '~' sorts after every character an entity id may hold.
		values[":hi"] = s(PrefixUsage + string(q.Window) + Separator + to + Separator + "~")
		in.KeyConditionExpression = aws.String("#gpk = :pk AND #gsk BETWEEN :lo AND :hi")
	}
	in.ExpressionAttributeValues = values
	if q.After != nil {
		// DynamoDB rejects a start key outside the key condition. A cursor from an earlier page
		// may lie outside this query's range when the range moved between pages (the default
		// range ends now): before the range, every snapshot in range follows it, so the page
		// starts at the range's start; after it, none does.
		switch cursorPosition(*q.After, in, values) {
		case -1:
		case +1:
			return UsagePage{}, nil
		default:
			in.ExclusiveStartKey = cursorKey(*q.After, in.IndexName != nil)
		}
	}
	var page UsagePage
	for calls := 0; ; calls++ {
		need := q.Limit - len(page.Snapshots)
		if filtered {
			in.Limit = aws.Int32(int32(max(need, 100)))
		} else {
			in.Limit = aws.Int32(int32(need))
		}
		out, err := t.client.Query(ctx, in)
		if err != nil {
			return UsagePage{}, fmt.Errorf("query usage: %w", err)
		}
		for i, item := range out.Items {
			snap, err := decodeUsage(item)
			if err != nil {
				return UsagePage{}, err
			}
			page.Snapshots = append(page.Snapshots, snap)
			if len(page.Snapshots) == q.Limit {
				if i < len(out.Items)-1 || out.LastEvaluatedKey != nil {
					page.Next = &UsageCursor{EntityID: snap.EntityID, Resource: snap.Resource, Window: snap.Window, WindowStart: snap.WindowStart}
				}
				return page, nil
			}
		}
		if out.LastEvaluatedKey == nil {
			return page, nil
		}
		next, err := keyCursor(out.LastEvaluatedKey)
		if err != nil {
			return UsagePage{}, err
		}
		if calls+1 >= maxQueryCalls {
			page.Next = next
			return page, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// cursorPosition places the key cursor c names against the key condition of in: -1 before its
// range, +1 after it, 0 within. A query without a sort key range (the entity-wide one) has every
// snapshot of the partition in range.
func cursorPosition(c UsageCursor, in *dynamodb.QueryInput, values map[string]types.AttributeValue) int {
	lo, okLo := values[":lo"].(*types.AttributeValueMemberS)
	hi, okHi := values[":hi"].(*types.AttributeValueMemberS)
	if in.FilterExpression != nil || !okLo || !okHi {
		return 0
	}
	k := usageSK(c.Resource, c.Window, c.WindowStart)
	if in.IndexName != nil {
		k = usageGSI2SK(c.EntityID, c.Window, c.WindowStart)
	}
	switch {
	case k < lo.Value:
		return -1
	case k > hi.Value:
		return +1
	}
	return 0
}

func clampMillis(ms int64) int64 { return min(max(ms, MinUsageMillis), MaxUsageMillis) }

// cursorKey returns the ExclusiveStartKey that resumes after the snapshot c names.
func cursorKey(c UsageCursor, gsi2 bool) map[string]types.AttributeValue {
	k := usageKey(c.EntityID, c.Resource, c.Window, c.WindowStart)
	if gsi2 {
		k[AttrGSI2PK] = s(PrefixResource + c.Resource)
		k[AttrGSI2SK] = s(usageGSI2SK(c.EntityID, c.Window, c.WindowStart))
	}
	return k
}

// keyCursor turns a LastEvaluatedKey (of the table or of GSI2) back into a cursor.
func keyCursor(k map[string]types.AttributeValue) (*UsageCursor, error) {
	pk, _ := k[AttrPK].(*types.AttributeValueMemberS)
	sk, _ := k[AttrSK].(*types.AttributeValueMemberS)
	if pk == nil || sk == nil || !strings.HasPrefix(pk.Value, PrefixUsage) || !strings.HasPrefix(sk.Value, PrefixUsage) {
		return nil, fmt.Errorf("storage: unexpected usage key %v", k)
	}
	parts := strings.Split(strings.TrimPrefix(sk.Value, PrefixUsage), Separator)
	if len(parts) != 3 {
		return nil, fmt.Errorf("storage: unexpected usage sort key %q", sk.Value)
	}
	ws, err := ParseWindowStart(parts[2])
	if err != nil {
		return nil, err
	}
	return &UsageCursor{EntityID: strings.TrimPrefix(pk.Value, PrefixUsage), Resource: parts[0], Window: Window(parts[1]), WindowStart: ws}, nil
}

func decodeUsage(item map[string]types.AttributeValue) (UsageSnapshot, error) {
	snap := UsageSnapshot{EntityID: strAttr(item[AttrEntityID]), Resource: strAttr(item[AttrResource]), Window: Window(strAttr(item[AttrWindow]))}
	fail := func(err error) (UsageSnapshot, error) {
		return UsageSnapshot{}, fmt.Errorf("storage: usage snapshot %s/%s %s: %w", snap.EntityID, snap.Resource, snap.Window, err)
	}
	if !snap.Window.Valid() {
		return fail(&DecodeError{Attr: AttrWindow, Reason: fmt.Sprintf("%.20q is not a window", snap.Window)})
	}
	var err error
	if snap.WindowStart, err = ParseWindowStart(strAttr(item[AttrWindowStart])); err != nil {
		return fail(&DecodeError{Attr: AttrWindowStart, Reason: err.Error()})
	}
	if snap.Acquires, err = Int64Attr(item, AttrUsageAcq); err != nil {
		return fail(err)
	}
	if snap.Counters, err = int128MapAttr(item, AttrCounters); err != nil {
		return fail(err)
	}
	if snap.AppliedVersion, err = Int64Attr(item, AttrAppliedVersion); err != nil {
		return fail(err)
	}
	if snap.TotalsVersion, err = Int64Attr(item, AttrTotalsVersion); err != nil {
		return fail(err)
	}
	if snap.AppliedAt, err = Int64Attr(item, AttrAppliedAt); err != nil {
		return fail(err)
	}
	if snap.Totals, err = int128MapAttr(item, AttrTotals); err != nil {
		return fail(err)
	}
	if snap.TotalAcquires, err = Int64Attr(item, AttrTotalAcq); err != nil {
		return fail(err)
	}
	return snap, nil
}

// int128MapAttr reads an optional Map of integer Numbers; absent is an empty map.
func int128MapAttr(item map[string]types.AttributeValue, name string) (map[string]tokenbucket.Int128, error) {
	out := map[string]tokenbucket.Int128{}
	av, ok := item[name]
	if !ok {
		return out, nil
	}
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, &DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Map"}
	}
	for k := range m.Value {
		v, err := Int128Attr(m.Value, k)
		if err != nil {
			return nil, &DecodeError{Attr: name + "." + k, Reason: err.(*DecodeError).Reason}
		}
		out[k] = v
	}
	return out, nil
}

// ReadUsage returns the snapshots of entity on resource of window w whose window_start lies in
// [from, to] (Unix ms), with every attribute (AppliedVersion, Totals… included), read from the
// table with strong consistency: in time order, or newest first when newestFirst is set; at most
// limit of them (every one when limit is 0). Reconciliation reads them; queries use QueryUsage.
func (t *Table) ReadUsage(ctx context.Context, entity, resource string, w Window, from, to int64, newestFirst bool, limit int) ([]UsageSnapshot, error) {
	if !w.Valid() {
		return nil, fmt.Errorf("storage: invalid window %q", w)
	}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(t.name),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(PrefixUsage + entity),
			":lo": s(usageSK(resource, w, clampMillis(from))),
			":hi": s(usageSK(resource, w, clampMillis(to))),
		},
		ConsistentRead:   aws.Bool(true),
		ScanIndexForward: aws.Bool(!newestFirst),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	var out []UsageSnapshot
	for {
		page, err := t.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read usage %s/%s %s: %w", entity, resource, w, err)
		}
		for _, item := range page.Items {
			snap, err := decodeUsage(item)
			if err != nil {
				return nil, err
			}
			out = append(out, snap)
		}
		if page.LastEvaluatedKey == nil || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// PutUsage writes snap whole, replacing the snapshot, on the condition that the stored one is
// as the caller read it: absent when exists is false, otherwise with agg_ver equal to
// expectVersion (a snapshot the aggregator changed meanwhile fails with *UsageConflictError, and
// nothing is written). expires is the ttl (epoch seconds).
func (t *Table) PutUsage(ctx context.Context, snap UsageSnapshot, expires int64, exists bool, expectVersion int64) error {
	if !snap.Window.Valid() {
		return fmt.Errorf("storage: invalid window %q", snap.Window)
	}
	item := usageKey(snap.EntityID, snap.Resource, snap.Window, snap.WindowStart)
	item[AttrEntityID], item[AttrResource], item[AttrWindow] = s(snap.EntityID), s(snap.Resource), s(string(snap.Window))
	item[AttrWindowStart] = s(FormatWindowStart(snap.WindowStart))
	item[AttrGSI2PK], item[AttrGSI2SK] = s(PrefixResource+snap.Resource), s(usageGSI2SK(snap.EntityID, snap.Window, snap.WindowStart))
	item[AttrCounters], item[AttrUsageAcq] = int128Map(snap.Counters), num(snap.Acquires)
	item[AttrAppliedVersion], item[AttrTotalsVersion], item[AttrAppliedAt] = num(snap.AppliedVersion), num(snap.TotalsVersion), num(snap.AppliedAt)
	item[AttrTotals], item[AttrTotalAcq] = int128Map(snap.Totals), num(snap.TotalAcquires)
	item[AttrTTL] = num(expires)
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(t.name),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(" + AttrPK + ")"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if exists {
		in.ConditionExpression = aws.String("attribute_exists(" + AttrPK + ") AND " + AttrAppliedVersion + " = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(expectVersion)}
		if expectVersion == 0 {
			in.ConditionExpression = aws.String("attribute_exists(" + AttrPK + ") AND attribute_not_exists(" + AttrAppliedVersion + ")")
			in.ExpressionAttributeValues = nil
		}
	}
	_, err := t.client.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		c := &UsageConflictError{Exists: len(ccf.Item) > 0}
		if c.Exists {
			c.AppliedVersion, _ = Int64Attr(ccf.Item, AttrAppliedVersion)
		}
		return c
	}
	return fmt.Errorf("put usage %s/%s %s %s: %w", snap.EntityID, snap.Resource, snap.Window, FormatWindowStart(snap.WindowStart), err)
}
