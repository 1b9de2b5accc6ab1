package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
)

func TestBound(t *testing.T) {
	l := limitSpec{Name: "x", Capacity: 20, Amount: 100, PeriodS: 1}
	for _, c := range []struct {
		elapsed time.Duration
		want    int64
	}{{0, 20}, {9 * time.Millisecond, 20}, {10 * time.Millisecond, 21}, {1999 * time.Millisecond, 219}, {time.Minute, 6020}} {
		if got := l.bound(c.elapsed); got != c.want {
			t.Errorf("bound(%v) = %d, want %d", c.elapsed, got, c.want)
		}
	}
	slow := limitSpec{Name: "y", Capacity: 500, Amount: 1, PeriodS: 86400}
	if got := slow.bound(time.Hour); got != 500 {
		t.Errorf("slow bound = %d, want 500", got)
	}
}

func TestLedgerVerdicts(t *testing.T) {
	var l ledger
	l.told(10)
	l.maybe(5)
	l.maybe(-3)
	if l.lo != 7 || l.hi != 15 {
		t.Fatalf("ledger = [%d, %d], want [7, 15]", l.lo, l.hi)
	}
	r := &result{Bound: 10, Admitted: 12, Ledger: l, Statuses: map[int]int{200: 1}}
	for charged, want := range map[int64][2]int64{6: {1, 0}, 7: {0, 0}, 15: {0, 0}, 17: {0, 2}} {
		r.Charged = charged
		if r.lost() != want[0] || r.double() != want[1] {
			t.Errorf("charged %d: lost %d double %d, want %v", charged, r.lost(), r.double(), want)
		}
	}
	if r.over() != 2 || r.ok(true) {
		t.Errorf("over = %d, ok = %v; want 2, false", r.over(), r.ok(true))
	}
	r.Admitted, r.Charged = 10, 10
	r.Statuses[503] = 1
	if r.ok(false) || !r.ok(true) {
		t.Error("a 5xx must fail a run without faults only")
	}
	if (&result{Bound: -1, Admitted: 1e9}).over() != 0 {
		t.Error("no bound means nothing is over it")
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-clients", "3", "-scenarios", "hot, leases", "-faults", "lost=0.1", "-refill-capacity", "200"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.clients != 3 || len(c.names) != 2 || c.names[1] != "leases" || !c.opts.faulty || c.opts.refillCapacity != 200 {
		t.Errorf("config %+v", c)
	}
	for _, args := range [][]string{
		{"-clients", "0"}, {"-refill-capacity", "0"}, {"-scenarios", "hot,nope"}, {"-faults", "lost=3"}, {"-failure-mode", "maybe"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%v) accepted", args)
		}
	}
}

// TestRunEndToEnd runs the tool as `make loadtest` does, on a small load without faults, and
// checks its verdicts against what must hold: the hot bucket grants exactly its capacity, the
// cascade parent binds, and the leases' and the restart's counters match what callers were
// told.
func TestRunEndToEnd(t *testing.T) {
	stop, err := ddbtest.Ensure()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	bin := filepath.Join(t.TempDir(), "devstack")
	build := exec.Command("go", "build", "-o", bin, "../devstack")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the stack: %v\n%s", err, out)
	}
	cfg, err := parseFlags([]string{"-clients", "8", "-ops", "700", "-duration", "10m",
		"-scenarios", "hot,cascade,leases,restart", "-stack", bin, "-ddb", os.Getenv(ddbtest.EnvEndpoint),
		"-log-dir", t.TempDir()}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !allOK(results, false) {
		t.Errorf("an invariant was broken:\n%s", out.String())
	}
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for name, want := range map[string]int64{"hot": 500, "cascade": 300} {
		r := byName[name]
		if r == nil {
			t.Fatalf("no %s result in:\n%s", name, out.String())
		}
		// 700 one-token acquires on a bucket of capacity want that refills 1 a day: exactly
		// want are granted and charged, the rest refused.
		if r.Admitted != want || r.Bound != want || r.Charged != want || r.Statuses[200] != int(want) || r.Statuses[429] != 700-int(want) {
			t.Errorf("%s: admitted %d, bound %d, charged %d, answers %v; want %d, %d, %d and 429 for the rest",
				name, r.Admitted, r.Bound, r.Charged, r.Statuses, want, want, want)
		}
	}
	for _, name := range []string{"leases", "restart"} {
		r := byName[name]
		if r == nil || r.Charged <= 0 || r.lost() != 0 || r.double() != 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
}
