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
//
// Each lane a bucket item has seen stays in it for laneTTL, so get prefers a free lane that last
// wrote the same bucket: a bucket written by one caller at a time then keeps one lane per
// process, however many other buckets the process writes concurrently, and its item stays small
// (each lane is about 25 bytes of every write, and of every stream record, for 10 minutes).
type lanes struct {
	mu     sync.Mutex
	base   string // 48 random bits per Limiter, base64url
	free   []freeLane
	made   int64
	writes atomic.Int64 // numbers the write ids of this Limiter
}

// freeLane is a lane not in use, and the bucket it last wrote.
type freeLane struct {
	name string
	last bucketID
}

func newLanes() *lanes {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &lanes{base: base64.RawURLEncoding.EncodeToString(b)}
}

// get returns a free lane for a write to bucket: the one that last wrote it if free, else the
// most recently freed one, else a new one.
func (p *lanes) get(bucket bucketID) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		p.made++
		return p.base + strconv.FormatInt(p.made, 36)
	}
	i := n - 1
	for j := n - 1; j >= 0; j-- {
		if p.free[j].last == bucket {
			i = j
			break
		}
	}
	lane := p.free[i].name
	p.free = append(p.free[:i], p.free[i+1:]...)
	return lane
}

// put frees lane, which last wrote bucket.
func (p *lanes) put(lane string, bucket bucketID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, freeLane{lane, bucket})
}

// lanesKnownFor is how long a Limiter prunes from the lanes it last read in an item. Lanes are
// removed only by writers that know them, and a bucket written without a failed condition is
// never read, so a Limiter that knows no lanes of an item (or knew them longer ago than this)
// asks its next single write to return the whole item (storage.BucketWrite.ReturnAll): once per
// lanesKnownFor per bucket and Limiter, the cost of decoding a larger answer. A prune is on the
// condition that the lane still holds what was read; one written since (its writer came back
// after laneTTL) fails the write, which is retried from the item the failure returns.
const lanesKnownFor = laneTTL / 2

// knowsLanes reports whether b's lanes were read from the item within lanesKnownFor of now.
func knowsLanes(b *storage.Bucket, now int64) bool {
	return b != nil && b.LanesAt != 0 && now-b.LanesAt < lanesKnownFor.Milliseconds()
}

// withLanes gives b, the prediction of a bucket after write w, the lanes pred knew: without the
// ones w pruned, and with w's own.
func withLanes(b, pred *storage.Bucket, w storage.BucketWrite) *storage.Bucket {
	if b == nil || pred == nil || pred.LanesAt == 0 {
		return b
	}
	b.Lanes = make(map[string]string, len(pred.Lanes)+1)
	for lane, id := range pred.Lanes {
		if _, pruned := w.Prune[lane]; !pruned {
			b.Lanes[lane] = id
		}
	}
	if w.Lane != "" {
		b.Lanes[w.Lane] = w.WriteID
	}
	b.LanesAt = pred.LanesAt
	return b
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
