package wire

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDLength is the longest entity id or resource.
const MaxIDLength = 256

// InvalidIDReason returns why s cannot be an id (an entity id, a resource, a request id or an
// idempotency key), or "" when it can: an id is 1 to MaxIDLength characters from A-Z a-z 0-9
// and _ . : @ / + = -, so the key separator '#' is not among them. The reason is worded to
// follow the name of the field it is about ("character 'é' (U+00E9) at position 3 is not
// allowed …").
func InvalidIDReason(s string) string {
	if len(s) == 0 {
		return "must not be empty"
	}
	pos := 0
	for i, r := range s {
		pos++
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '_' || r == '.' || r == ':' || r == '@' || r == '/' || r == '+' || r == '=' || r == '-':
		case r == utf8.RuneError && !utf8.ValidString(s[i:i+1]) && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("byte %d is not UTF-8 (use A-Z a-z 0-9 _ . : @ / + = -)", i+1)
		default:
			return fmt.Sprintf("character %q (%U) at position %d is not allowed (use A-Z a-z 0-9 _ . : @ / + = -)", r, r, pos)
		}
	}
	if len(s) > MaxIDLength { // every allowed character is one byte
		return fmt.Sprintf("must be at most %d characters, got %d", MaxIDLength, len(s))
	}
	return ""
}

// LeaseRef returns what errors and logs show of a lease id: its first 8 characters and "…",
// enough to tell leases apart, far too little to settle one (an id is a bearer secret).
func LeaseRef(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:8] + "…"
}
