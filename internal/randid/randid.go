// Package randid is the one source of random identifiers: lease ids, secrets and request ids.
package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// Bytes returns n bytes from crypto/rand. It never fails: since Go 1.24 crypto/rand.Read
// panics rather than return an error when the system's source is broken.
func Bytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// Hex returns 128 random bits as 32 lowercase hex digits: an id nobody can guess.
func Hex() string { return hex.EncodeToString(Bytes(16)) }
