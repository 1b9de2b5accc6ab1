package storage

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/internal/randid"
)

// In-item leases. A single-level stored lease can live in its bucket item instead of an item
// of its own: the acquire takes the tokens and records the lease in one UpdateItem, and a
// settle, rollback or adjust changes the bucket and the lease in one UpdateItem too (no
// transaction, no read). Each lease is one Map attribute AttrInlineLease+key:
//
//	{"x": expires at (Unix ms), "s": "o" | "c" | "r", "a": {limit: millitokens held}, "k…": true}
//
// A cascade lease lives in its child's bucket item and also holds "p": {limit: millitokens
// held} of the parent's bucket, which its writes change in the same transaction.
//
// "k"+InlineKeyHash(key) records an adjustment's idempotency key. A lease bound to a request id
// (RequestKey) also holds "z": its secret (128 random bits, base64url), which its id carries and
// every change of it presents, since its key can be derived by anyone who knows the request. A settled or rolled back
// lease stays as a tombstone with its final amounts for TombstoneMs (10 s), so a settle repeated from
// any process is recognised; an expired lease stands as committed. AttrInlineCount counts the
// entries (open and tombstones); an acquire records a lease only while it is below
// LeaseOp.Max, and removes expired entries it knows of in the same write.
//
// AttrForwarded (Number, Unix ms) is the latest expiry of the request-bound leases an acquire
// sent to lease items instead (the item was full): while it has not passed, a request-bound
// lease is not created in the item, so a retried acquire never lands on both paths.
const (
	AttrInlineLease = "l#"
	AttrInlineCount = "nl"
	AttrForwarded   = "fb"

	inlineExpires = "x"
	inlineState   = "s"
	inlineAmounts = "a"
	inlineKeyPref = "k"
	inlineSecret  = "z"
	inlineParent  = "p"
	// requestKeyPrefix starts the key of a request-bound lease (RequestKey); a random key
	// (NewInlineKey) is 22 base64url characters, so the two never meet.
	requestKeyPrefix = "q"
)

var inlineStates = map[string]string{LeaseOpen: "o", LeaseCommitted: "c", LeaseRolledBack: "r"}

// InlineLease is one lease kept in a bucket item.
type InlineLease struct {
	State     string           // LeaseOpen, LeaseCommitted or LeaseRolledBack
	ExpiresAt int64            // Unix ms
	Amounts   map[string]int64 // millitokens held, by limit name (every limit of the lease)
	Keys      map[string]bool  // InlineKeyHash of the idempotency keys of adjustments applied
	Secret    string           // a request-bound lease's secret; "" for one with a random key
	Parent    map[string]int64 // a cascade lease's millitokens held in the parent's bucket; nil for one level
}

// LeaseOp is the change of an in-item lease that a BucketWrite makes, under its conditions.
type LeaseOp struct {
	Key string // the lease's key: its attribute is AttrInlineLease+Key
	// Create records a new open lease holding Amounts until ExpiresAt, on the condition that
	// it is absent and the item holds fewer than Max entries once Prune is removed.
	Create    bool
	Max       int64
	ExpiresAt int64
	// Prune removes entries (by key) on the condition that they still expire at the value given
	// (expired ones: the caller saw them).
	Prune map[string]int64
	// Expect, when set, is what an existing lease must hold exactly (every limit of it); a
	// change of an existing lease is always on the condition that it is open and unexpired at
	// the write's time.
	Expect map[string]int64
	// Amounts (Create: all; otherwise the limits whose amount changes) are set.
	Amounts map[string]int64
	// ParentExpect and ParentAmounts are Expect and Amounts of a cascade lease's parent level
	// (Create: ParentAmounts, every limit of the parent, makes the lease a cascade one).
	ParentExpect  map[string]int64
	ParentAmounts map[string]int64
	To            string // the new state, when set
	KeyHash       string // recorded on the condition that it is not yet (InlineKeyHash)
	// Secret is a request-bound lease's secret: Create records it; any other change is on the
	// condition that the entry holds it.
	Secret string
	// Request marks the Create of a request-bound lease (Key is its RequestKey): it is also on
	// the condition that AttrForwarded is absent or has passed (at the write's time).
	Request bool
	// Forward is the bucket write of a request-bound acquire whose lease goes to a lease item:
	// on the condition that the item holds no lease under Key (a retried acquire that was
	// recorded in the item fails it), and, when ForwardUntil is set, raising AttrForwarded to
	// it on the condition that it is not above it (a failure is a lost race: the caller sets
	// nothing on its next try, since AttrForwarded only grows).
	Forward      bool
	ForwardUntil int64
}

// Holds reports whether the current item cur satisfies op's condition on the lease at now.
func (op *LeaseOp) Holds(cur *Bucket, now int64) bool {
	var e InlineLease
	ok := false
	if cur != nil {
		e, ok = cur.Leases[op.Key]
	}
	if op.Forward {
		return !ok
	}
	if op.Create && op.Request && cur != nil && cur.Forwarded >= now {
		return false
	}
	if op.Create {
		var n int64
		if cur != nil {
			n = cur.LeaseCount
		}
		for k, x := range op.Prune {
			if cur == nil {
				return false
			}
			if p, ok := cur.Leases[k]; ok && p.ExpiresAt == x {
				n--
			} else {
				return false
			}
		}
		return !ok && n < op.Max
	}
	if !ok || !sameSecret(e.Secret, op.Secret) || e.State != LeaseOpen || e.ExpiresAt <= now || (op.KeyHash != "" && e.Keys[op.KeyHash]) {
		return false
	}
	for name, x := range op.Expect {
		if e.Amounts[name] != x {
			return false
		}
	}
	for name, x := range op.ParentExpect {
		if v, ok := e.Parent[name]; !ok || v != x {
			return false
		}
	}
	return true
}

func sameSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// LeaseEntryError reports that a write's condition on an in-item lease failed. Nothing was
// written. Current is the item as it was (nil when it does not exist); Secret is the secret the
// write presented.
type LeaseEntryError struct {
	Key     string
	Secret  string
	Current *Bucket
}

// Error names the lease.
func (e *LeaseEntryError) Error() string {
	return "storage: condition failed on in-item lease " + e.Key
}

// Entry returns the lease as the item held it, and whether it held it. A lease holding another
// secret than the one presented is reported absent: a wrong secret learns nothing.
func (e *LeaseEntryError) Entry() (InlineLease, bool) {
	if e.Current == nil {
		return InlineLease{}, false
	}
	l, ok := e.Current.Leases[e.Key]
	if !ok || !sameSecret(l.Secret, e.Secret) {
		return InlineLease{}, false
	}
	return l, true
}

// Replayed returns the lease a request-bound acquire's failed write found under its key (the
// acquire was recorded before, by an earlier try of the same request), whatever its secret.
func (e *LeaseEntryError) Replayed() (InlineLease, bool) {
	if e.Current == nil || !isRequestKey(e.Key) {
		return InlineLease{}, false
	}
	l, ok := e.Current.Leases[e.Key]
	return l, ok
}

// NewInlineKey returns the key of a new in-item lease: 128 random bits, base64url (22 bytes).
// It is also how a request-bound lease's secret is made.
func NewInlineKey() string { return base64.RawURLEncoding.EncodeToString(randid.Bytes(16)) }

// isRequestKey reports whether k has the form of a RequestKey (a random key is one byte shorter).
func isRequestKey(k string) bool { return len(k) == 23 && strings.HasPrefix(k, requestKeyPrefix) }

// RequestKey returns the key of the in-item lease of a request id: "q" and 128 bits of the
// request's hash (see NewLeaseID: it covers the principal), base64url (23 bytes). A retried
// acquire thus targets the same entry, whose absence is its write's condition.
func RequestKey(principal, entity, resource, requestID string) string {
	h := requestHashBytes(principal, entity, resource, requestID)
	return requestKeyPrefix + base64.RawURLEncoding.EncodeToString(h[:16])
}

// InlineKeyHash returns what an in-item lease records of an adjustment's idempotency key: 72
// bits of its SHA-256, base64url (12 bytes), so a key of any length costs the item 13 bytes.
func InlineKeyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// InlineLeaseID is what the id of an in-item lease carries, so that any process can settle it
// without a read: the bucket, the lease's key (its secret), expiry, limits and the amounts it
// held when acquired. Nothing in it is trusted beyond naming the item and the entry: every
// write is conditioned on what the entry holds.
type InlineLeaseID struct {
	EntityID  string
	Resource  string
	Key       string
	ExpiresAt int64
	Limits    []LimitConfig
	Amounts   map[string]int64
	Secret    string // a request-bound lease's secret (its Key is a RequestKey); "" otherwise
	// ParentID, ParentLimits and ParentAmounts are a cascade lease's parent level ("" for one
	// level): the entry lives in the child's item and holds both levels' amounts.
	ParentID      string
	ParentLimits  []LimitConfig
	ParentAmounts map[string]int64
}

// TombstoneMs is how long a settled or rolled back in-item lease stays in its item (from the
// settle): a settle or rollback repeated within it is answered as the first was; after it the
// lease is gone (not found), and its place is free for another.
const TombstoneMs = 10_000

// inlineIDPrefix starts every in-item lease id; the other forms are hex digits only.
const inlineIDPrefix = "b."

// maxInlineIDLength bounds what ParseInlineLeaseID decodes.
const maxInlineIDLength = 4096

type wireInlineID struct {
	E string  `json:"e"`
	R string  `json:"r"`
	K string  `json:"k"`
	X int64   `json:"x"`
	L [][]any `json:"l"` // [name, capacity, refill amount, refill period ms, millitokens held]
	Z string  `json:"z,omitempty"`
	P string  `json:"p,omitempty"` // the parent of a cascade lease
	Q [][]any `json:"q,omitempty"` // the parent's limits, as L
}

// IsInlineLeaseID reports whether id has the form of an in-item lease id (it may still be
// malformed: ParseInlineLeaseID says).
func IsInlineLeaseID(id string) bool { return strings.HasPrefix(id, inlineIDPrefix) }

// FormatInlineLeaseID encodes id: "b." and base64url of a compact JSON.
func FormatInlineLeaseID(id InlineLeaseID) string {
	w := wireInlineID{E: id.EntityID, R: id.Resource, K: id.Key, X: id.ExpiresAt, L: wireLimits(id.Limits, id.Amounts), Z: id.Secret}
	if id.ParentID != "" {
		w.P, w.Q = id.ParentID, wireLimits(id.ParentLimits, id.ParentAmounts)
	}
	b, _ := json.Marshal(w) // strings and integers only: cannot fail
	return inlineIDPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// wireLimits encodes limits and the amounts held as an id's [name, capacity, refill amount,
// refill period ms, millitokens held].
func wireLimits(limits []LimitConfig, amounts map[string]int64) [][]any {
	out := make([][]any, 0, len(limits))
	for _, c := range limits {
		out = append(out, []any{c.Name, c.Capacity, c.RefillAmount, c.RefillPeriodMs, amounts[c.Name]})
	}
	return out
}

// parseWireLimits decodes wireLimits strictly.
func parseWireLimits(in [][]json.RawMessage) ([]LimitConfig, map[string]int64, bool) {
	limits, amounts := make([]LimitConfig, 0, len(in)), make(map[string]int64, len(in))
	for _, l := range in {
		if len(l) != 5 {
			return nil, nil, false
		}
		var c LimitConfig
		var held int64
		if json.Unmarshal(l[0], &c.Name) != nil || json.Unmarshal(l[1], &c.Capacity) != nil || json.Unmarshal(l[2], &c.RefillAmount) != nil ||
			json.Unmarshal(l[3], &c.RefillPeriodMs) != nil || json.Unmarshal(l[4], &held) != nil {
			return nil, nil, false
		}
		if _, dup := amounts[c.Name]; dup || c.Name == "" || c.Capacity <= 0 || c.RefillAmount <= 0 || c.RefillPeriodMs <= 0 || held < 0 {
			return nil, nil, false
		}
		limits = append(limits, c)
		amounts[c.Name] = held
	}
	return limits, amounts, len(limits) > 0
}

// ParseInlineLeaseID decodes FormatInlineLeaseID strictly: anything else (another encoding of
// the same content included) is ErrBadLeaseID.
func ParseInlineLeaseID(s string) (InlineLeaseID, error) {
	bad := func(why string) (InlineLeaseID, error) {
		return InlineLeaseID{}, fmt.Errorf("%w: %s", ErrBadLeaseID, why)
	}
	if !IsInlineLeaseID(s) || len(s) > maxInlineIDLength {
		return bad("not an in-item lease id")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s[len(inlineIDPrefix):])
	if err != nil {
		return bad("not base64url")
	}
	var w struct {
		E string              `json:"e"`
		R string              `json:"r"`
		K string              `json:"k"`
		X int64               `json:"x"`
		L [][]json.RawMessage `json:"l"`
		Z string              `json:"z"`
		P string              `json:"p"`
		Q [][]json.RawMessage `json:"q"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil || dec.More() {
		return bad("not its JSON")
	}
	out := InlineLeaseID{EntityID: w.E, Resource: w.R, Key: w.K, ExpiresAt: w.X, Secret: w.Z, ParentID: w.P}
	if ValidateID(w.E) != nil || ValidateID(w.R) != nil || w.R == DefaultResource {
		return bad("bad entity or resource")
	}
	// A request-bound key comes with its secret; a random key is its own secret.
	key, bound := w.K, isRequestKey(w.K)
	if bound {
		key = w.K[len(requestKeyPrefix):]
	}
	if k, err := base64.RawURLEncoding.Strict().DecodeString(key); err != nil || len(k) != 16 {
		return bad("bad key")
	}
	if z, err := base64.RawURLEncoding.Strict().DecodeString(w.Z); bound && (err != nil || len(z) != 16) || !bound && w.Z != "" {
		return bad("bad secret")
	}
	if w.X <= 0 {
		return bad("no expiry")
	}
	var ok bool
	if out.Limits, out.Amounts, ok = parseWireLimits(w.L); !ok {
		return bad("no limits, or a limit is not [name, capacity, amount, period, held]")
	}
	if w.P != "" || w.Q != nil {
		if ValidateID(w.P) != nil || w.P == w.E {
			return bad("bad parent")
		}
		if out.ParentLimits, out.ParentAmounts, ok = parseWireLimits(w.Q); !ok {
			return bad("no parent limits, or a limit is not [name, capacity, amount, period, held]")
		}
	}
	if FormatInlineLeaseID(out) != s {
		return bad("not in canonical form")
	}
	return out, nil
}

// leaseOpUpdate adds op's parts to a bucket update's expression.
func leaseOpUpdate(op *LeaseOp, now int64, names map[string]string, values map[string]types.AttributeValue, set, add, remove, cond *[]string) {
	names["#L"] = AttrInlineLease + op.Key
	if op.Forward {
		*cond = append(*cond, "attribute_not_exists(#L)")
		if op.ForwardUntil > 0 {
			names["#fb"], values[":fbx"] = AttrForwarded, num(op.ForwardUntil)
			*set = append(*set, "#fb = :fbx")
			*cond = append(*cond, "(attribute_not_exists(#fb) OR #fb <= :fbx)")
		}
		return
	}
	if op.Create {
		amounts := make(map[string]types.AttributeValue, len(op.Amounts))
		for name, x := range op.Amounts {
			amounts[name] = num(x)
		}
		entry := map[string]types.AttributeValue{
			inlineExpires: num(op.ExpiresAt), inlineState: s(inlineStates[LeaseOpen]),
			inlineAmounts: &types.AttributeValueMemberM{Value: amounts},
		}
		if op.Secret != "" {
			entry[inlineSecret] = s(op.Secret)
		}
		if op.ParentAmounts != nil {
			parent := make(map[string]types.AttributeValue, len(op.ParentAmounts))
			for name, x := range op.ParentAmounts {
				parent[name] = num(x)
			}
			entry[inlineParent] = &types.AttributeValueMemberM{Value: parent}
		}
		values[":lentry"] = &types.AttributeValueMemberM{Value: entry}
		if op.Request {
			names["#fb"], values[":lnow"] = AttrForwarded, num(now)
			*cond = append(*cond, "(attribute_not_exists(#fb) OR #fb < :lnow)")
		}
		names["#nl"] = AttrInlineCount
		values[":lmax"], values[":ldelta"] = num(op.Max+int64(len(op.Prune))), num(1-int64(len(op.Prune)))
		*set = append(*set, "#L = :lentry")
		*add = append(*add, "#nl :ldelta")
		*cond = append(*cond, "attribute_not_exists(#L)", "(attribute_not_exists(#nl) OR #nl < :lmax)")
		if len(op.Prune) > 0 {
			names["#lx"] = inlineExpires
		}
		for i, k := range slices.Sorted(maps.Keys(op.Prune)) {
			pn, pv := fmt.Sprintf("#lp%d", i), fmt.Sprintf(":lp%d", i)
			names[pn], values[pv] = AttrInlineLease+k, num(op.Prune[k])
			*remove = append(*remove, pn)
			*cond = append(*cond, pn+".#lx = "+pv)
		}
		return
	}
	names["#lx"], names["#ls"] = inlineExpires, inlineState
	if len(op.Expect)+len(op.Amounts) > 0 {
		names["#la"] = inlineAmounts
	}
	values[":lopen"], values[":lnow"] = s(inlineStates[LeaseOpen]), num(now)
	*cond = append(*cond, "#L.#ls = :lopen", "#L.#lx > :lnow")
	if op.Secret != "" {
		names["#lz"], values[":lz"] = inlineSecret, s(op.Secret)
		*cond = append(*cond, "#L.#lz = :lz")
	}
	// Per limit of each level's map (#la: the lease's, #lpa: the parent's), a condition on what
	// it holds (Expect) or the amount set (Amounts).
	if len(op.ParentExpect)+len(op.ParentAmounts) > 0 {
		names["#lpa"] = inlineParent
	}
	i := 0
	for _, part := range []struct {
		m           map[string]int64
		path, value string
		condition   bool
	}{
		{op.Expect, "#L.#la.", ":lae", true}, {op.Amounts, "#L.#la.", ":lav", false},
		{op.ParentExpect, "#L.#lpa.", ":lpe", true}, {op.ParentAmounts, "#L.#lpa.", ":lpv", false},
	} {
		for _, name := range slices.Sorted(maps.Keys(part.m)) {
			an, av := fmt.Sprintf("#lan%d", i), fmt.Sprintf("%s%d", part.value, i)
			names[an], values[av] = name, num(part.m[name])
			if part.condition {
				*cond = append(*cond, part.path+an+" = "+av)
			} else {
				*set = append(*set, part.path+an+" = "+av)
			}
			i++
		}
	}
	if op.To != "" {
		// A settled lease stays as a tombstone for TombstoneMs, so that a settle repeated from
		// any process is recognised; then it counts as expired and an acquire may remove it.
		values[":lto"], values[":lgone"] = s(inlineStates[op.To]), num(now+TombstoneMs)
		*set = append(*set, "#L.#ls = :lto", "#L.#lx = :lgone")
	}
	if op.KeyHash != "" {
		names["#lk"], values[":ltrue"] = inlineKeyPref+op.KeyHash, &types.AttributeValueMemberBOOL{Value: true}
		*set = append(*set, "#L.#lk = :ltrue")
		*cond = append(*cond, "attribute_not_exists(#L.#lk)")
	}
}

// decodeInline decodes the in-item lease attribute name (AttrInlineLease+key) of a bucket.
func decodeInline(name string, av types.AttributeValue) (InlineLease, error) {
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return InlineLease{}, &DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Map"}
	}
	var d itemDecoder
	l := InlineLease{ExpiresAt: d.int(m.Value, inlineExpires), Amounts: map[string]int64{}}
	if _, ok := m.Value[inlineSecret]; ok {
		l.Secret = d.str(m.Value, inlineSecret)
	}
	st := d.str(m.Value, inlineState)
	for k, v := range inlineStates {
		if v == st {
			l.State = k
		}
	}
	if l.State == "" && d.err == nil {
		d.fail(&DecodeError{Attr: name + "." + inlineState, Reason: fmt.Sprintf("%.20q is not a lease state", st)})
	}
	if am, ok := m.Value[inlineAmounts].(*types.AttributeValueMemberM); ok {
		for k := range am.Value {
			l.Amounts[k] = d.int(am.Value, k)
		}
	} else {
		d.fail(&DecodeError{Attr: name + "." + inlineAmounts, Reason: "is not a Map"})
	}
	if pv, ok := m.Value[inlineParent]; ok {
		pm, ok := pv.(*types.AttributeValueMemberM)
		if !ok {
			d.fail(&DecodeError{Attr: name + "." + inlineParent, Reason: "is not a Map"})
		} else {
			l.Parent = make(map[string]int64, len(pm.Value))
			for k := range pm.Value {
				l.Parent[k] = d.int(pm.Value, k)
			}
		}
	}
	for k, v := range m.Value {
		if h, ok := strings.CutPrefix(k, inlineKeyPref); ok {
			if _, isBool := v.(*types.AttributeValueMemberBOOL); !isBool {
				d.fail(&DecodeError{Attr: name + "." + k, Reason: "is not a Boolean"})
			}
			if l.Keys == nil {
				l.Keys = map[string]bool{}
			}
			l.Keys[h] = true
		}
	}
	if d.err != nil {
		return InlineLease{}, d.err
	}
	return l, nil
}
