package limiter_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeExamples keeps the README's code true: every block marked
// <!-- example: Name --> must appear line by line, in order (ignoring indentation and blank
// lines), in the function Name of this package's or package client's example_test.go, which
// go test compiles and runs.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]string{}
	for _, file := range []string{"example_test.go", filepath.Join("..", "..", "client", "example_test.go")} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				bodies[fn.Name.Name] = lines(string(src[fset.Position(fn.Body.Pos()).Offset:fset.Position(fn.Body.End()).Offset]))
			}
		}
	}
	blocks := regexp.MustCompile("(?s)<!-- example: (\\w+) -->\\n```go\\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 6 {
		t.Fatalf("found %d marked README blocks, want at least 6", len(blocks))
	}
	for _, b := range blocks {
		name, want := b[1], lines(b[2])
		body, ok := bodies[name]
		if !ok {
			t.Errorf("README block marked %s: no such function in example_test.go", name)
			continue
		}
		i := 0
		for _, l := range body {
			if i < len(want) && l == want[i] {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("README block of %s: line %q is not in the example (in this order)", name, want[i])
		}
	}
}

// lines returns the non-blank lines of s, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
