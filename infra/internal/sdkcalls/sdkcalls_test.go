package sdkcalls

import (
	"maps"
	"reflect"
	"slices"
	"testing"
)

// The fixture module in testdata/mod has two programs whose calls are known.
func TestAnalyzeFixture(t *testing.T) {
	p, err := Load("testdata/mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		main                        string
		ops, items, indexes, action []string
	}{
		{main: "example.com/fixture/cmd/direct", ops: []string{"PutItem"},
			action: []string{"dynamodb:PutItem"}},
		{main: "example.com/fixture/cmd/handler", ops: []string{"Query", "TransactWriteItems"},
			items: []string{"ConditionCheck", "Put"}, indexes: []string{"GSI9"},
			action: []string{"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:Query"}},
	} {
		c, err := p.Analyze(tc.main)
		if err != nil {
			t.Fatal(err)
		}
		for what, pair := range map[string][2][]string{
			"operations": {slices.Sorted(maps.Keys(c.Operations)), tc.ops}, "transaction items": {slices.Sorted(maps.Keys(c.TransactItems)), tc.items},
			"query indexes": {slices.Sorted(maps.Keys(c.QueryIndexes)), tc.indexes}, "actions": {c.Actions(), tc.action},
		} {
			got, want := pair[0], pair[1]
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %v, want %v", tc.main, what, got, want)
			}
		}
	}
}

func TestAnalyzeRejectsNonMain(t *testing.T) {
	p, err := Load("testdata/mod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Analyze("example.com/fixture/cmd/nosuch"); err == nil {
		t.Fatal("Analyze of an unknown package: no error")
	}
}
