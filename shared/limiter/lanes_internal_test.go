package limiter

import "testing"

// TestLanesPreferTheBucketTheyLastWrote: a free lane that last wrote a bucket is handed out for
// it again, so a bucket written by one caller at a time keeps one lane per process (and its item
// one write id) however many other buckets the process writes at once.
func TestLanesPreferTheBucketTheyLastWrote(t *testing.T) {
	p := newLanes()
	a, b, c := bucketID{"a", "r"}, bucketID{"b", "r"}, bucketID{"c", "r"}
	la, lb := p.get(a), p.get(b) // two writes at once: two lanes
	if la == lb {
		t.Fatalf("two lanes in use at once are both %q", la)
	}
	p.put(la, a)
	p.put(lb, b) // lb is now the most recently freed
	if got := p.get(a); got != la {
		t.Errorf("get(a) = %q, want %q, the lane that last wrote a (not the most recently freed %q)", got, la, lb)
	} else {
		p.put(got, a)
	}
	if got := p.get(b); got != lb {
		t.Errorf("get(b) = %q, want %q", got, lb)
	} else {
		p.put(got, b)
	}
	// A bucket no free lane has written gets the most recently freed one, and no new lane is
	// made while one is free.
	if got := p.get(c); got != lb {
		t.Errorf("get(c) = %q, want the most recently freed %q", got, lb)
	}
	if p.made != 2 {
		t.Errorf("%d lanes made, want 2", p.made)
	}
	// A retired lane (never put back) is never handed out again.
	if got := p.get(a); got != la {
		t.Errorf("get(a) = %q, want %q", got, la)
	}
	if got := p.get(a); got == la || got == lb {
		t.Errorf("get(a) with no lane free = %q, a lane in use", got)
	}
}
