package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// PrefixAudit starts the partition key of every audit record: AUDIT#E#{entity},
// AUDIT#R#{resource} or AUDIT#SYSTEM. Only the admin function writes under it.
const PrefixAudit = "AUDIT#"

// Audit record attributes.
const (
	attrAction    = "action"
	attrPrincipal = "principal"
	attrAt        = "at"
	attrChangeID  = "change_id"
	attrRequestID = "request_id"
	attrBefore    = "before"
	attrAfter     = "after"
	// attrLimitsChange, on an entity item, is the change id of the last change of its stored
	// limits (see limitsWrite).
	attrLimitsChange = "lchg"
	// attrVersion is the admin version of an entity or limits item: 1 when created, +1 per
	// audited change. An item written before auditing existed has none (version 0).
	attrVersion = "ver"
)

// MaxAuditPage is the largest page QueryAudit returns.
const MaxAuditPage = 100

// AuditRecord is one admin change as stored: item PK = AUDIT#{Subject}, SK =
// {At, 13 digits}#{ChangeID}, so a subject's records sort by time.
type AuditRecord struct {
	// Subject is whose log the record is in: E#{entity} (the entity and all its stored
	// limits), R#{resource} (the resource default) or SYSTEM (the system default).
	Subject   string
	ChangeID  string // 32 hex digits, unique per change
	At        int64  // Unix ms of the change; also the changed item's updated_at
	Principal string // who: the caller's IAM principal, or a stand-in
	RequestID string // the API request that made the change, if any
	Action    string
	EntityID  string // the entity changed, or whose limits changed ("" for R# and SYSTEM)
	Resource  string // the resource of a limits change (DefaultResource: entity default)
	Before    string // JSON of the state before; "" when the item did not exist
	After     string // JSON of the state after; "" when the item was deleted
	Version   int64  // the changed item's version after the change (0 after a delete)
	ExpiresAt int64  // epoch seconds of the TTL; 0 keeps the record
}

// AuditSubjectEntity is the Subject of an entity's records (its own and its limits').
func AuditSubjectEntity(id string) string { return PrefixEntity + id }

// AuditSubjectOf returns the Subject of the records of a limits scope.
func AuditSubjectOf(sc Scope) string {
	switch {
	case sc.EntityID != "":
		return PrefixEntity + sc.EntityID
	case sc.Resource != "":
		return PrefixResource + sc.Resource
	}
	return KeySystem
}

// isChangeID reports whether s is 32 lower-case hex digits.
func isChangeID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (r *AuditRecord) sortKey() string { return fmt.Sprintf("%013d#%s", r.At, r.ChangeID) }

// isAuditSortKey reports whether s is an audit record's sort key: 13 digits, '#', a change id.
func isAuditSortKey(s string) bool {
	if len(s) != 46 || s[13] != '#' || !isChangeID(s[14:]) {
		return false
	}
	for i := 0; i < 13; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func encodeAudit(r *AuditRecord) map[string]types.AttributeValue {
	item := key(PrefixAudit+r.Subject, r.sortKey())
	item[attrChangeID] = s(r.ChangeID)
	item[attrAt] = num(r.At)
	item[attrPrincipal] = s(r.Principal)
	item[attrAction] = s(r.Action)
	item[attrVersion] = num(r.Version)
	for name, v := range map[string]string{attrRequestID: r.RequestID, attrEntityID: r.EntityID,
		attrResource: r.Resource, attrBefore: r.Before, attrAfter: r.After} {
		if v != "" {
			item[name] = s(v)
		}
	}
	if r.ExpiresAt > 0 {
		item[AttrTTL] = num(r.ExpiresAt)
	}
	return item
}

func decodeAudit(item map[string]types.AttributeValue) (AuditRecord, error) {
	var d itemDecoder
	pk := d.str(item, AttrPK)
	r := AuditRecord{
		Subject: pk[min(len(PrefixAudit), len(pk)):], ChangeID: d.str(item, attrChangeID), At: d.int(item, attrAt),
		Principal: d.str(item, attrPrincipal), RequestID: d.str(item, attrRequestID), Action: d.str(item, attrAction),
		EntityID: d.str(item, attrEntityID), Resource: d.str(item, attrResource),
		Before: d.str(item, attrBefore), After: d.str(item, attrAfter),
		Version: d.int(item, attrVersion), ExpiresAt: d.int(item, AttrTTL),
	}
	if d.err != nil {
		return AuditRecord{}, fmt.Errorf("storage: audit record %s: %w", pk, d.err)
	}
	return r, nil
}

// auditPut is the transaction item that writes r. Its condition (the record must not exist)
// makes it the change's idempotency record: a transaction resent after its answer was lost
// fails here, which proves the first one applied (see appliedBefore).
func (t *Table) auditPut(r *AuditRecord) (types.TransactWriteItem, error) {
	if r == nil || r.Subject == "" || !isChangeID(r.ChangeID) || r.At <= 0 {
		return types.TransactWriteItem{}, fmt.Errorf("%w: audit record needs a subject, a 32-hex change id and a time", ErrInvalidKey)
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(t.name), Item: encodeAudit(r), ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}}, nil
}

// Expect is the state of an item an audited change replaces: NoItem (the item must not
// exist), or the version read (0 for an item stored before auditing, which has none).
type Expect int64

// NoItem is the Expect of a change that creates its item.
const NoItem Expect = -1

// condition returns the condition expression for e, with #ver and :ver when it needs them.
func (e Expect) condition(names map[string]string, values map[string]types.AttributeValue) string {
	switch {
	case e == NoItem:
		return "attribute_not_exists(PK)"
	case e == 0:
		names["#ver"] = attrVersion
		return "attribute_exists(PK) AND attribute_not_exists(#ver)"
	}
	names["#ver"] = attrVersion
	values[":ver"] = num(int64(e))
	return "#ver = :ver"
}

// ErrStale means an audited change was refused because its item is no longer in the state the
// change was computed from (another admin changed it, or it was created or deleted): read it
// again and recompute. Nothing was written.
var ErrStale = errors.New("storage: item changed since it was read")

// auditedWrite runs a transaction whose last item is an audit record, and interprets a
// cancellation: the audit record already stored means this very change was applied by an
// earlier attempt (nil); a failed condition on item target means ErrStale (unless check
// says otherwise); a conflict with another transaction ErrConflict.
func (t *Table) auditedWrite(ctx context.Context, op string, items []types.TransactWriteItem, rec *AuditRecord,
	check func(reasons []types.CancellationReason) error) error {
	put, err := t.auditPut(rec)
	if err != nil {
		return err
	}
	items = append(items, put)
	// The SDK gives the transaction an idempotency token (ClientRequestToken) and keeps it
	// when it resends after a lost answer: DynamoDB then answers success without applying
	// twice. A resend by the caller is a new request with a new token: the record's condition
	// tells that it applied.
	_, err = t.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) {
		return fmt.Errorf("%s: %w", op, err)
	}
	reasons := tce.CancellationReasons
	if aws.ToString(reasons[len(reasons)-1].Code) == "ConditionalCheckFailed" {
		return nil // applied by an earlier attempt whose answer was lost
	}
	if check != nil {
		if cerr := check(reasons); cerr != nil {
			return cerr
		}
	}
	for _, r := range reasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			return fmt.Errorf("%s: %w", op, ErrStale)
		case "TransactionConflict":
			return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// AuditPage is one page of a subject's records, newest first.
type AuditPage struct {
	Records   []AuditRecord
	NextToken string // "" on the last page
}

// QueryAudit returns up to limit (1 to MaxAuditPage; 0 means MaxAuditPage) records of subject,
// newest first, starting after nextToken (from a previous page; "" for the first). A token that
// is not one this function returned for subject is an ErrInvalidKey. One Query, strongly
// consistent: a change is in its subject's log as soon as its write returned.
func (t *Table) QueryAudit(ctx context.Context, subject string, limit int, nextToken string) (AuditPage, error) {
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	pk := PrefixAudit + subject
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(pk)},
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(int32(limit)),
	}
	if nextToken != "" {
		sk, err := decodeAuditToken(nextToken)
		if err != nil {
			return AuditPage{}, err
		}
		in.ExclusiveStartKey = key(pk, sk)
	}
	out, err := t.client.Query(ctx, in)
	if err != nil {
		return AuditPage{}, fmt.Errorf("query audit of %s: %w", subject, err)
	}
	page := AuditPage{Records: make([]AuditRecord, 0, len(out.Items))}
	for _, it := range out.Items {
		r, err := decodeAudit(it)
		if err != nil {
			return AuditPage{}, err
		}
		page.Records = append(page.Records, r)
	}
	if lek := out.LastEvaluatedKey; lek != nil {
		page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(strAttr(lek[AttrSK])))
	}
	return page, nil
}

// decodeAuditToken returns the sort key a page token holds.
func decodeAuditToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !isAuditSortKey(string(b)) {
		return "", fmt.Errorf("%w: next_token is not a token of this audit log", ErrInvalidKey)
	}
	return string(b), nil
}
