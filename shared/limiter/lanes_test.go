package limiter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
)

// bucketLanes reads the bucket item of entity/resource and returns its writer lanes' write ids
// and its consumed counter of limit.
func bucketLanes(t *testing.T, e *env, entity, resource, limit string) (map[string]string, string) {
	t.Helper()
	out, err := e.client.GetItem(ctx(), &dynamodb.GetItemInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "B#" + entity}, "SK": &types.AttributeValueMemberS{Value: "B#" + resource}}})
	if err != nil {
		t.Fatal(err)
	}
	lanes := map[string]string{}
	for k, v := range out.Item {
		if strings.HasPrefix(k, "w#") {
			lanes[k] = v.(*types.AttributeValueMemberS).Value
		}
	}
	consumed := ""
	if v, ok := out.Item["u#"+limit].(*types.AttributeValueMemberN); ok {
		consumed = v.Value
	}
	return lanes, consumed
}

// TestStaleLanesArePruned: every Limiter (Lambda instance) that writes a bucket leaves its
// lane's write id in the item. Writes that never fail a condition never read the item, and used
// never to prune: 20 instances, gone for 11 minutes, stayed in it forever (about 25 bytes each of
// every later write). A Limiter now learns an item's lanes from the answer to its first write
// (and again every lanesKnownFor), and its next writes prune the stale ones, 4 at a time.
func TestStaleLanesArePruned(t *testing.T) {
	for name, limits := range map[string][]limiter.Limit{
		"full bucket":     {limiter.PerMinute("rpm", limiter.MaxTokens)}, // every take re-sets a full bucket
		"draining bucket": {limiter.PerDay("rpd", 1000)},                 // every take is an ADD
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			req := limiter.AcquireRequest{EntityID: "key", Resource: "gpt", Limits: limits,
				Consume: map[string]int64{limits[0].Name: 1}, Cascade: limiter.CascadeOff}
			for range 20 {
				mustAcquire(t, e.newLimiter(), req)
			}
			if lanes, _ := bucketLanes(t, e, "key", "gpt", limits[0].Name); len(lanes) != 20 {
				t.Fatalf("after 20 instances wrote once: %d lanes, want 20", len(lanes))
			}
			e.clock.Advance(11 * time.Minute) // every lane is now older than laneTTL (10 min)
			fresh := e.newLimiter()
			for i := range 6 { // the first write learns the lanes; the next five prune 4 each
				if i == 2 {
					// A pruning write applied, its answer lost: the resend finds the lanes gone
					// and its own write id in the item, and counts as applied, once.
					e.faults.LoseResponse("UpdateItem", 1)
				}
				mustAcquire(t, fresh, req)
			}
			if e.faults.Lost() != 1 {
				t.Fatalf("%d answers lost, want 1", e.faults.Lost())
			}
			lanes, consumed := bucketLanes(t, e, "key", "gpt", limits[0].Name)
			if len(lanes) != 1 {
				t.Errorf("after 6 writes of a new instance: %d lanes %v, want only its own", len(lanes), lanes)
			}
			if consumed != "26000" {
				t.Errorf("consumed %s millitokens, want 26000 (26 acquires of 1)", consumed)
			}
		})
	}
}

// TestPruneOfALaneWrittenAgainFails: a Limiter prunes from lanes it read earlier, on the
// condition that each still holds what it read. A lane whose writer came back in between is
// kept, and the write that tried to prune it is retried from the item its failure returns:
// nothing is lost or charged twice.
func TestPruneOfALaneWrittenAgainFails(t *testing.T) {
	e := newEnv(t)
	limits := []limiter.Limit{limiter.PerDay("rpd", 1000)}
	req := limiter.AcquireRequest{EntityID: "key", Resource: "gpt", Limits: limits, Consume: map[string]int64{"rpd": 1}, Cascade: limiter.CascadeOff}
	old := e.newLimiter()
	mustAcquire(t, old, req)
	e.clock.Advance(11 * time.Minute)
	fresh := e.newLimiter()
	mustAcquire(t, fresh, req) // learns old's lane, now stale
	before, _ := bucketLanes(t, e, "key", "gpt", "rpd")
	mustAcquire(t, old, req) // old comes back: its lane is written again
	e.meter.Reset()
	mustAcquire(t, fresh, req)
	if n := e.meter.Total().Requests; n != 2 {
		t.Errorf("the acquire that pruned a lane written since made %d requests, want 2 (the prune failed, the retry kept the lane)", n)
	}
	lanes, consumed := bucketLanes(t, e, "key", "gpt", "rpd")
	if len(before) != 2 || len(lanes) != 2 {
		t.Errorf("lanes %v then %v: want both instances' lanes kept", before, lanes)
	}
	if consumed != "4000" {
		t.Errorf("consumed %s millitokens, want 4000", consumed)
	}
}

// TestStaleLanesOfACascadeParentArePruned: a cascade writes the child and the parent in one
// transaction, whose answer carries no item. A Limiter that has not read a stored bucket's
// lanes lately reads it before such a write (once per lanesKnownFor), so the parent, written by
// every instance of every child, does not keep every lane that ever wrote it.
func TestStaleLanesOfACascadeParentArePruned(t *testing.T) {
	e := newEnv(t)
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "proj"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lim.CreateEntity(ctx(), limiter.Entity{ID: "key", ParentID: "proj", Cascade: true}); err != nil {
		t.Fatal(err)
	}
	// Always full: every take re-sets the bucket and no write fails a condition.
	req := limiter.AcquireRequest{EntityID: "key", Resource: "gpt", Limits: []limiter.Limit{limiter.PerMinute("rpm", limiter.MaxTokens)},
		Consume: map[string]int64{"rpm": 1}}
	for range 20 {
		mustAcquire(t, e.newLimiter(), req)
	}
	if lanes, _ := bucketLanes(t, e, "proj", "gpt", "rpm"); len(lanes) != 20 {
		t.Fatalf("after 20 instances wrote once: %d lanes in the parent, want 20", len(lanes))
	}
	e.clock.Advance(11 * time.Minute)
	fresh := e.newLimiter()
	for range 7 { // the second acquire reads both buckets; it and the next four prune 4 each
		mustAcquire(t, fresh, req)
	}
	lanes, consumed := bucketLanes(t, e, "proj", "gpt", "rpm")
	if len(lanes) != 1 {
		t.Errorf("parent after 7 cascades of a new instance: %d lanes %v, want only its own", len(lanes), lanes)
	}
	if consumed != "27000" {
		t.Errorf("parent consumed %s millitokens, want 27000", consumed)
	}
	e.meter.Reset()
	mustAcquire(t, fresh, req)
	if u := e.meter.Total(); u.Requests != 1 || u.TableRCU != 0 {
		t.Errorf("a cascade of an instance that knows the lanes: %+v, want 1 request, no read", u)
	}
}
