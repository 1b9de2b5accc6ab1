package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	mathrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

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
	mu   sync.Mutex
	base string // random per Limiter
	free []string
	made int
}

func newLanes() *lanes {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return &lanes{base: hex.EncodeToString(b)}
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
	return p.base + "." + strconv.Itoa(p.made)
}

func (p *lanes) put(lane string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, lane)
}

// newWriteID returns a write id made at now (Unix ms): "{now}.{16 random hex digits}".
func newWriteID(now int64) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return strconv.FormatInt(now, 10) + "." + hex.EncodeToString(b)
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

// backoff waits a random 0 to min(2^attempt, 64) ms ("full jitter"), so that writers contending
// for one item stop colliding in lockstep.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(mathrand.Int64N(int64(min(time.Millisecond<<min(attempt, 10), 64*time.Millisecond)) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
