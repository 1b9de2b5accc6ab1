// Package clip bounds strings written to logs and error messages.
package clip

import "unicode/utf8"

// String returns s when it has at most n bytes; otherwise its longest prefix of at most n bytes
// that ends on a character boundary (a multi-byte character is never cut in two), followed by
// "…".
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
