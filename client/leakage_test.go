package client_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/zeroae/zae-limiter-go/client"
)

// TestErrorsDoNotCarryLeaseIDs: a lease id settles its lease, so an error about a call on it
// (here: nothing listens) names the lease by its first 8 characters only, including the URL
// net/http's error repeats.
func TestErrorsDoNotCarryLeaseIDs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a port nothing listens on
	c, err := client.NewHTTP("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	const id = "b.eyJlIjoia2V5LTEiLCJyIjoiZ3B0LTQiLCJrIjoic2VjcmV0LXNlY3JldCJ9"
	err = c.Commit(context.Background(), id)
	if err == nil {
		t.Fatal("Commit to a closed port succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, id[8:]) || !strings.Contains(msg, id[:8]+"…") {
		t.Errorf("error %q: want the lease named by %q only", msg, id[:8]+"…")
	}
}
