package limiterstack

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zeroae/zae-limiter-go/infra/internal/sdkcalls"
)

// rootModule is the import path of the functions' module (the repository root).
const rootModule = "github.com/zeroae/zae-limiter-go"

// TestGrantsMatchCode derives, by static analysis of each function's code (package sdkcalls:
// every DynamoDB operation reachable from its main, through the limiter and storage packages),
// the DynamoDB actions it can call, and compares them with what its role is granted on the
// table: an action granted but never called, or called but not granted, fails. The stream
// actions are the event source mapping's, not the code's.
func TestGrantsMatchCode(t *testing.T) {
	prog, err := sdkcalls.Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f := defaultStack(t)
	stream := map[string]bool{}
	for _, a := range StreamReadActions {
		stream[a] = true
	}
	for _, fn := range FunctionNames {
		calls, err := prog.Analyze(rootModule + "/functions/" + fn)
		if err != nil {
			t.Fatal(err)
		}
		used := calls.Actions()
		if len(used) == 0 {
			t.Fatalf("%s: the analysis found no DynamoDB call at all", fn)
		}
		set := map[string]bool{}
		for _, s := range roleStatements(t, f, fn) {
			for _, a := range s.actions {
				if strings.HasPrefix(a, "dynamodb:") && !(fn == FunctionAggregator && stream[a]) {
					set[a] = true
				}
			}
		}
		granted := make([]string, 0, len(set))
		for a := range set {
			granted = append(granted, a)
		}
		sort.Strings(granted)
		equal(t, fn+": DynamoDB actions granted (want: those its code calls)", granted, used)

		// Index access: granted exactly when the code queries an index, on those indexes.
		var indexes []string
		for name := range calls.QueryIndexes {
			indexes = append(indexes, name)
		}
		sort.Strings(indexes)
		var onIndexes []string
		for _, g := range TableGrants()[fn] {
			if g.Indexes {
				onIndexes = []string{IndexGSI1, IndexGSI2}
			}
		}
		equal(t, fn+": indexes granted (want: those its code queries)", onIndexes, indexes)
	}
}
