package storage

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Attribute names of the key schema and the TTL.
const (
	AttrPK     = "PK"
	AttrSK     = "SK"
	AttrGSI1PK = "GSI1PK"
	AttrGSI1SK = "GSI1SK"
	AttrGSI2PK = "GSI2PK"
	AttrGSI2SK = "GSI2SK"
	AttrTTL    = "ttl"

	// IndexGSI1 maps a parent to its children.
	IndexGSI1 = "GSI1"
	// IndexGSI2 maps a resource to the entities that use it (buckets and usage snapshots).
	IndexGSI2 = "GSI2"
)

// Key prefixes. An id may never contain Separator, so a key splits back into its parts.
const (
	Separator      = "#"
	PrefixEntity   = "E#"
	PrefixBucket   = "B#"
	PrefixResource = "R#"
	PrefixParent   = "P#"
	PrefixLimits   = "L#"
	PrefixLease    = "LEASE#"
	PrefixUsage    = "U#"
	PrefixAgg      = "AGG#"
	KeySystem      = "SYSTEM"
	SKMeta         = "#META"
	SKLease        = "#LEASE"
	// SKLimitsMark is the item of an entity's partition that changes with each change of the
	// entity's stored limits (see Table.PutLimits).
	SKLimitsMark = "#LIMITS"

	// DefaultResource is the reserved resource that names an entity's default limits.
	DefaultResource = "_default_"
)

// MaxIDLength is the longest entity id or resource.
const MaxIDLength = wire.MaxIDLength

// ValidateID reports whether s can be an entity id or a resource: 1 to 256 characters from
// A-Z a-z 0-9 and _ . : @ / + = - (wire.InvalidIDReason). The key separator '#' is not among
// them. The error is an *InvalidIDError (errors.Is(err, ErrInvalidKey) holds).
func ValidateID(s string) error {
	if reason := wire.InvalidIDReason(s); reason != "" {
		return &InvalidIDError{Reason: reason}
	}
	return nil
}

// InvalidIDError reports why a string cannot be an id.
type InvalidIDError struct {
	Reason string
}

// Error returns the reason alone ("character 'é' (U+00E9) at position 3 is not allowed …"),
// worded to follow the name of the field it is about, which the caller puts before it.
func (e *InvalidIDError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrInvalidKey) true.
func (e *InvalidIDError) Is(target error) bool { return target == ErrInvalidKey }

func s(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: s(pk), AttrSK: s(sk)}
}

func entityKey(id string) map[string]types.AttributeValue { return key(PrefixEntity+id, SKMeta) }

func bucketKey(entity, resource string) map[string]types.AttributeValue {
	return key(PrefixBucket+entity, PrefixBucket+resource)
}

// limitsKey returns the key of stored limits for a scope: entity+resource, entity default
// (resource = DefaultResource), resource default (entity = "") or system default (both "").
func limitsKey(entity, resource string) map[string]types.AttributeValue {
	switch {
	case entity != "":
		return key(PrefixEntity+entity, PrefixLimits+resource)
	case resource != "":
		return key(PrefixResource+resource, PrefixLimits)
	default:
		return key(KeySystem, PrefixLimits)
	}
}
