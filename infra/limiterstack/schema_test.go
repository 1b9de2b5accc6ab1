package limiterstack

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// storageDir is shared/storage of the root module, which creates the same table in DynamoDB
// Local (storage.TableDefinition). infra is a separate module and does not import it; this test
// reads its source instead, so a schema change on either side that is not made on the other
// fails here.
var storageDir = filepath.Join("..", "..", "shared", "storage")

// parseStorage parses the storage package's non-test files.
func parseStorage(t *testing.T) []*ast.File {
	t.Helper()
	return parsePackage(t, storageDir, "schema.go")
}

// parsePackage parses the non-test files of the package in dir, which must hold file.
func parsePackage(t *testing.T, dir, file string) []*ast.File {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		t.Fatalf("%s not found (%v): nothing to compare with", filepath.Join(dir, file), err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var files []*ast.File
	fset := token.NewFileSet()
	for _, m := range matches {
		if filepath.Ext(m) != ".go" || len(m) > 8 && m[len(m)-8:] == "_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", m, err)
		}
		files = append(files, f)
	}
	return files
}

// stringConsts returns the package's string constants by name.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							out[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	return out
}

// stringList returns the string literals of the package-level var name.
func stringList(files []*ast.File, name string) ([]string, bool) {
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.CompositeLit)
					if !ok {
						return nil, false
					}
					var out []string
					for _, e := range lit.Elts {
						if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
							v, _ := strconv.Unquote(b.Value)
							out = append(out, v)
						}
					}
					return out, true
				}
			}
		}
	}
	return nil, false
}

// projection is what the storage package declares for one index.
type projection struct {
	Type        string   // types.ProjectionTypeXxx
	NonKeyAttrs []string // NonKeyAttributes, literal or through a package-level var
}

// indexProjections maps each index constant named in an IndexName field to the projection of the
// same composite literal.
func indexProjections(files []*ast.File) map[string]projection {
	out := map[string]projection{}
	strLits := func(lit *ast.CompositeLit) []string {
		var l []string
		for _, e := range lit.Elts {
			if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
				v, _ := strconv.Unquote(b.Value)
				l = append(l, v)
			}
		}
		return l
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			var index string
			var proj projection
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				if key == nil {
					continue
				}
				switch key.Name {
				case "IndexName":
					ast.Inspect(kv.Value, func(n ast.Node) bool {
						if id, ok := n.(*ast.Ident); ok && id.Name != "aws" && id.Name != "String" {
							index = id.Name
						}
						return true
					})
				case "Projection":
					ast.Inspect(kv.Value, func(n ast.Node) bool {
						kv2, ok := n.(*ast.KeyValueExpr)
						if !ok {
							return true
						}
						k, _ := kv2.Key.(*ast.Ident)
						switch {
						case k == nil:
						case k.Name == "ProjectionType":
							if sel, ok := kv2.Value.(*ast.SelectorExpr); ok {
								proj.Type = sel.Sel.Name
							}
						case k.Name == "NonKeyAttributes":
							switch v := kv2.Value.(type) {
							case *ast.CompositeLit:
								proj.NonKeyAttrs = strLits(v)
							case *ast.Ident:
								proj.NonKeyAttrs, _ = stringList(files, v.Name)
							}
						}
						return true
					})
				}
			}
			if index != "" && proj.Type != "" {
				out[index] = proj
			}
			return true
		})
	}
	return out
}

func TestTableSchemaMatchesStorage(t *testing.T) {
	files := parseStorage(t)
	consts := stringConsts(files)
	for name, mine := range map[string]string{
		"AttrPK": AttrPK, "AttrSK": AttrSK, "AttrGSI1PK": AttrGSI1PK, "AttrGSI1SK": AttrGSI1SK,
		"AttrGSI2PK": AttrGSI2PK, "AttrGSI2SK": AttrGSI2SK, "AttrTTL": AttrTTL,
		"IndexGSI1": IndexGSI1, "IndexGSI2": IndexGSI2, "PrefixBucket": BucketKeyPrefix,
	} {
		theirs, ok := consts[name]
		if !ok {
			t.Errorf("storage.%s not found: update this test and the stack together", name)
			continue
		}
		equal(t, "storage."+name, mine, theirs)
	}
	equal(t, "acquire partitions", AcquireWritablePartitions, []string{consts["PrefixBucket"] + "*", consts["PrefixLease"] + "*"})
	equal(t, "admin partitions", AdminWritablePartitions, []string{consts["PrefixEntity"] + "*", consts["PrefixResource"] + "*", consts["KeySystem"],
		consts["PrefixAudit"] + "*"})
	equal(t, "admin bucket cleanup", AdminBucketCleanupPartitions, []string{consts["PrefixBucket"] + "*"})
	equal(t, "aggregator partitions", AggregatorWritablePartitions, []string{consts["PrefixUsage"] + "*"})

	// The stack declares GSI1 ALL and GSI2 INCLUDE GSI2NonKeyAttributes (TestTable).
	equal(t, "index projections in storage.TableDefinition", indexProjections(files), map[string]projection{
		"IndexGSI1": {Type: "ProjectionTypeAll"},
		"IndexGSI2": {Type: "ProjectionTypeInclude", NonKeyAttrs: GSI2NonKeyAttributes},
	})
}

// TestMetricNamesMatchCode: the alarms and the dashboard read the metrics the functions write
// (shared/metrics); a name changed on one side only would leave an alarm that never fires.
func TestMetricNamesMatchCode(t *testing.T) {
	consts := stringConsts(parsePackage(t, filepath.Join("..", "..", "shared", "metrics"), "metrics.go"))
	for name, mine := range map[string]string{
		"MetricRequests": MetricRequests, "MetricLatency": MetricLatency, "MetricClientErrors": MetricClientErrors,
		"MetricRefusals": MetricRefusals, "MetricServerErrors": MetricServerErrors, "MetricUnavailable": MetricUnavailable,
		"MetricDegraded": MetricDegraded, "MetricAcquires": MetricAcquires, "MetricLeaseSettles": MetricLeaseSettles,
		"MetricRecords": MetricRecords, "MetricApplied": MetricApplied, "MetricMalformed": MetricMalformed,
		"MetricRetried": MetricRetried, "MetricSnapshotWrites": MetricSnapshotWrites, "MetricBatchLatency": MetricBatchLatency,
		"DefaultNamespace": DefaultProps().MetricsNamespace, "DimFunction": "FunctionName",
	} {
		theirs, ok := consts[name]
		if !ok {
			t.Errorf("metrics.%s not found: update this test and the stack together", name)
			continue
		}
		equal(t, "metrics."+name, mine, theirs)
	}
}
