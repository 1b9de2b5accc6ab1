package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ledger is what callers were told, as an interval of what the table must hold: a call answered
// 200 moves both ends, a call without a definite answer (5xx, cut connection) only the upper
// end. The table's counter outside [lo, hi] means tokens were lost (below) or charged twice
// (above).
type ledger struct {
	lo, hi int64
}

// told records a call known to have applied amount.
func (l *ledger) told(amount int64) { l.lo += amount; l.hi += amount }

// maybe records a call that may have applied amount (or not).
func (l *ledger) maybe(amount int64) {
	if amount >= 0 {
		l.hi += amount
	} else {
		l.lo += amount
	}
}

// result is one scenario's outcome.
type result struct {
	Name     string
	Clients  int
	Statuses map[int]int // by HTTP status; 0 = no answer
	Requests int
	Elapsed  time.Duration
	P50, P99 time.Duration

	Admitted  int64 // tokens granted with a 200 (degraded grants excluded)
	Degraded  int   // fail-open grants that took nothing
	Contended int   // 429 contended answers, each followed by a retry
	Bound     int64 // exact upper bound on Admitted; -1 when the scenario has none
	Ledger    ledger
	Charged   int64 // what the table's consumed counter holds, in tokens
	Faults    string
	Injected  bool     // the scenario injects its own faults (5xx are expected)
	Problems  []string // invariant violations and unexpected answers
}

// over returns how many tokens were admitted beyond the exact bound.
func (r *result) over() int64 {
	if r.Bound < 0 {
		return 0
	}
	return max(0, r.Admitted-r.Bound)
}

// lost returns tokens callers were told were taken but the table does not hold.
func (r *result) lost() int64 { return max(0, r.Ledger.lo-r.Charged) }

// double returns tokens the table holds beyond anything callers could have caused.
func (r *result) double() int64 { return max(0, r.Charged-r.Ledger.hi) }

// fiveXX counts answers 500 and above and requests without an answer.
func (r *result) fiveXX() int {
	n := r.Statuses[0]
	for s, c := range r.Statuses {
		if s >= 500 {
			n += c
		}
	}
	return n
}

// ok reports whether the scenario kept every invariant: nothing over-admitted, lost or charged
// twice, no problems, and (when no fault was injected) no 5xx.
func (r *result) ok(faulty bool) bool {
	return r.over() == 0 && r.lost() == 0 && r.double() == 0 && len(r.Problems) == 0 && (faulty || r.Injected || r.fiveXX() == 0)
}

func statusString(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := fmt.Sprint(k)
		if k == 0 {
			name = "none"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, m[k]))
	}
	return strings.Join(parts, " ")
}

func boundString(r *result) string {
	if r.Bound < 0 {
		return "-"
	}
	return fmt.Sprint(r.Bound)
}

// writeTable prints results as a Markdown table (readable in a terminal, pasteable into docs).
func writeTable(w io.Writer, rs []*result, faulty bool) {
	fmt.Fprintln(w, "| scenario | clients | requests | answers | admitted | bound | over | charged | told [lo, hi] | lost | double | 5xx | degraded | contended | p50 | p99 | req/s | ok |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		rate := 0.0
		if r.Elapsed > 0 {
			rate = float64(r.Requests) / r.Elapsed.Seconds()
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %s | %d | %d | [%d, %d] | %d | %d | %d | %d | %d | %s | %s | %.0f | %v |\n",
			r.Name, r.Clients, r.Requests, statusString(r.Statuses), r.Admitted, boundString(r), r.over(),
			r.Charged, r.Ledger.lo, r.Ledger.hi, r.lost(), r.double(), r.fiveXX(), r.Degraded, r.Contended,
			r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), rate, r.ok(faulty))
	}
	for _, r := range rs {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "- %s: %s\n", r.Name, p)
		}
	}
}
