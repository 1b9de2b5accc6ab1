package httpapi

import (
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Limit is the JSON form of a limit, in its full or its shorthand spelling: see
// wire.LimitJSON.
type Limit = wire.LimitJSON

// LimitFrom returns the full JSON spelling of l (l.JSON()).
func LimitFrom(l limiter.Limit) Limit { return l.JSON() }

// LimitsFrom returns the full JSON spelling of every limit (an empty list, never null).
func LimitsFrom(ls []limiter.Limit) []Limit { return wire.LimitsJSON(ls) }
