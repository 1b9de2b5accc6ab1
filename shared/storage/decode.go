package storage

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/tokenbucket"
)

// How stored items are read: one strict policy for every item kind.
//
// An attribute the item's layout marks optional reads as its zero value when absent (a bucket
// never charged has no acq, a snapshot of a window without acquires no acquires). An attribute
// that is present but of another type, or a Number that is not an integer of the expected
// range, is a *DecodeError naming the attribute and what it holds: never read as 0 or skipped.
// Buckets, usage snapshots, entities, stored limits and leases are all read this way (Int64Attr,
// Int128Attr and itemDecoder), including the items a failed condition returns.

// DecodeError reports an attribute of a stored item that cannot be read.
type DecodeError struct {
	Attr   string // the attribute's name
	Reason string // what is wrong with it, with the value when it is short
}

// Error names the attribute and says what is wrong.
func (e *DecodeError) Error() string { return fmt.Sprintf("attribute %s: %s", e.Attr, e.Reason) }

// Int64Attr reads the optional integer Number attribute name of item: 0 when absent, a
// *DecodeError when it is not a Number or not an integer that fits 64 bits.
func Int64Attr(item map[string]types.AttributeValue, name string) (int64, error) {
	av, ok := item[name]
	if !ok {
		return 0, nil
	}
	nv, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0, &DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Number"}
	}
	v, err := strconv.ParseInt(nv.Value, 10, 64)
	if err != nil {
		return 0, &DecodeError{Attr: name, Reason: fmt.Sprintf("%.40q is not an integer that fits 64 bits", nv.Value)}
	}
	return v, nil
}

// Int128Attr reads the optional integer Number attribute name of item, in 128 bits (every
// integer DynamoDB can store: 38 digits): 0 when absent, a *DecodeError when it is not a Number
// or not an integer.
func Int128Attr(item map[string]types.AttributeValue, name string) (tokenbucket.Int128, error) {
	av, ok := item[name]
	if !ok {
		return tokenbucket.Int128{}, nil
	}
	nv, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return tokenbucket.Int128{}, &DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Number"}
	}
	v, err := tokenbucket.ParseInt128(nv.Value)
	if err != nil {
		return tokenbucket.Int128{}, &DecodeError{Attr: name, Reason: fmt.Sprintf("%.40q is not an integer", nv.Value)}
	}
	return v, nil
}

// avKind names an attribute value's DynamoDB type as the console does.
func avKind(av types.AttributeValue) string {
	switch av.(type) {
	case *types.AttributeValueMemberS:
		return "String"
	case *types.AttributeValueMemberN:
		return "Number"
	case *types.AttributeValueMemberB:
		return "Binary"
	case *types.AttributeValueMemberBOOL:
		return "Boolean"
	case *types.AttributeValueMemberNULL:
		return "Null"
	case *types.AttributeValueMemberM:
		return "Map"
	case *types.AttributeValueMemberL:
		return "List"
	case *types.AttributeValueMemberSS:
		return "String Set"
	case *types.AttributeValueMemberNS:
		return "Number Set"
	case *types.AttributeValueMemberBS:
		return "Binary Set"
	}
	return "value of an unknown type"
}

// itemDecoder reads the attributes of one item under the policy above and keeps the first
// problem; the caller checks err once at the end.
type itemDecoder struct{ err error }

func (d *itemDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// str reads an optional String attribute ("" when absent).
func (d *itemDecoder) str(m map[string]types.AttributeValue, name string) string {
	av, ok := m[name]
	if !ok {
		return ""
	}
	v, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		d.fail(&DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a String"})
		return ""
	}
	return v.Value
}

// int reads an optional integer Number attribute (0 when absent).
func (d *itemDecoder) int(m map[string]types.AttributeValue, name string) int64 {
	v, err := Int64Attr(m, name)
	if err != nil {
		d.fail(err)
	}
	return v
}

// bool reads an optional Boolean attribute (false when absent).
func (d *itemDecoder) bool(m map[string]types.AttributeValue, name string) bool {
	av, ok := m[name]
	if !ok {
		return false
	}
	v, ok := av.(*types.AttributeValueMemberBOOL)
	if !ok {
		d.fail(&DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Boolean"})
		return false
	}
	return v.Value
}

// maps reads an optional List of Maps (nil when absent).
func (d *itemDecoder) maps(m map[string]types.AttributeValue, name string) []map[string]types.AttributeValue {
	av, ok := m[name]
	if !ok {
		return nil
	}
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok {
		d.fail(&DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a List"})
		return nil
	}
	out := make([]map[string]types.AttributeValue, 0, len(l.Value))
	for i, v := range l.Value {
		mv, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			d.fail(&DecodeError{Attr: fmt.Sprintf("%s[%d]", name, i), Reason: "is a " + avKind(v) + ", not a Map"})
			return nil
		}
		out = append(out, mv.Value)
	}
	return out
}

// strMap reads an optional Map of Strings (empty when absent).
func (d *itemDecoder) strMap(m map[string]types.AttributeValue, name string) map[string]string {
	out := map[string]string{}
	av, ok := m[name]
	if !ok {
		return out
	}
	mv, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		d.fail(&DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a Map"})
		return out
	}
	for k := range mv.Value {
		out[k] = d.str(mv.Value, k)
	}
	return out
}

// strSet reads an optional String Set (nil when absent).
func (d *itemDecoder) strSet(m map[string]types.AttributeValue, name string) []string {
	av, ok := m[name]
	if !ok {
		return nil
	}
	v, ok := av.(*types.AttributeValueMemberSS)
	if !ok {
		d.fail(&DecodeError{Attr: name, Reason: "is a " + avKind(av) + ", not a String Set"})
		return nil
	}
	return v.Value
}
