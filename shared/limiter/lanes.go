package limiter

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/jitter"
	"github.com/zeroae/zae-limiter-go/shared/storage"
)

// laneTTL is how long a lane's write id stays in a bucket item after its last write; older ones
// are pruned by other writers. It is far beyond how long the SDK resends a request.
const laneTTL = 10 * time.Minute

// maxPrune is how many stale lanes one write removes from an item.
const maxPrune = 4

// lanes hands out writer lanes: names under which a Limiter records the id of its last write in
// each bucket item. A lane has at most one write in flight, which is what makes a write's id
// condition exact (see storage.BucketWrite). A lane whose call ended without knowing whether
// its write was applied is retired, never handed out again: a late delivery of that write can
// then still be recognised.
type lanes struct {
	mu     sync.Mutex
	base   string // 48 random bits per Limiter, base64url
	free   []string
	made   int64
	writes atomic.Int64 // numbers the write ids of this Limiter
}

func newLanes() *lanes {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &lanes{base: base64.RawURLEncoding.EncodeToString(b)}
}

func (p *lanes) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		lane := p.free[n-1]
		p.free = p.free[:n-1]
		return lane
	}
	p.made++
	return p.base + strconv.FormatInt(p.made, 36)
}

func (p *lanes) put(lane string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, lane)
}

// newWriteID returns a write id made at now (Unix ms): "{now}.{n}", both base 36, n numbering
// the Limiter's writes. Ids differ between the writes of one lane, which is all the lane's
// condition needs (lane names are unique per Limiter), and are short: every write carries one.
func (p *lanes) newWriteID(now int64) string {
	return strconv.FormatInt(now, 36) + "." + strconv.FormatInt(p.writes.Add(1), 36)
}

// staleLanes returns the lanes of b, other than lane, whose last write is older than laneTTL at now
// (at most maxPrune), with their write ids.
func staleLanes(b *storage.Bucket, lane string, now int64) map[string]string {
	var out map[string]string
	for l, id := range b.Lanes {
		if l == lane || storage.WriteIDTime(id) > now-laneTTL.Milliseconds() {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[l] = id
		if len(out) == maxPrune {
			break
		}
	}
	return out
}

// backoff waits before retry attempt (0-based) on a contended item: full jitter, 1 ms doubling
// to at most 64 ms.
func backoff(ctx context.Context, attempt int) error {
	return jitter.Backoff{Base: time.Millisecond, Max: 64 * time.Millisecond}.Wait(ctx, attempt)
}
