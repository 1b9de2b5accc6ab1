package storage

import (
	"math"
	"testing"
)

func TestVersionBase(t *testing.T) {
	for now, want := range map[int64]int64{
		0:                                 0,
		1_795_000_000_000:                 1_795_000_000_000_000_000,
		-1:                                0,
		(math.MaxInt64 - 1) / VersionBase: (math.MaxInt64 - 1) / VersionBase * VersionBase,
		(math.MaxInt64-1)/VersionBase + 1: 0,
		253_402_300_799_999:               0, // year 9999
	} {
		if got := versionBase(now); got != want || got > math.MaxInt64-1 {
			t.Errorf("versionBase(%d) = %d, want %d", now, got, want)
		}
	}
}
