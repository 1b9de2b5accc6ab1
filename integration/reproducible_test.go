package integration

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// functions are the Lambda functions `make build` builds.
var functions = []string{"acquire", "admin", "aggregator"}

// run runs name args in dir with env added to the environment, failing the test on error.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestBootstrapsAreReproducible builds the functions with `make build` twice: in this checkout,
// and in a copy of its tracked files committed as another git repository at another path. The
// bootstraps must be byte-identical (so the CDK asset hashes, and the deployed code, change
// only when the source does), and each must carry the toolchain go.mod pins and no VCS stamp.
// GOFLAGS asks for VCS stamps: a machine-wide -buildvcs=false must not be what makes it pass.
func TestBootstrapsAreReproducible(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Fatalf("the checkout has no .git (%v): the test compares builds of two commits", err)
	}
	tmp := t.TempDir()
	// -buildvcs=auto stamps whenever there is a repository: only the Makefile's own flag may
	// turn it off (an empty GOFLAGS would fall back to `go env -w` settings).
	env := []string{"GOFLAGS=-buildvcs=auto", "GOTOOLCHAIN=local"}

	// The copy: every tracked file, in a repository of its own with a different commit.
	src := filepath.Join(tmp, "src")
	for _, f := range strings.Split(strings.TrimSpace(run(t, root, nil, "git", "ls-files")), "\n") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := []string{"-c", "user.name=reproducible", "-c", "user.email=reproducible@example.invalid", "-c", "commit.gpgsign=false"}
	run(t, src, nil, "git", "init", "-q")
	run(t, src, nil, "git", append(git, "add", "-A")...)
	run(t, src, nil, "git", append(git, "commit", "-q", "-m", "another commit of the same source")...)

	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	run(t, root, env, "make", "--no-print-directory", "build", "BIN="+a)
	run(t, src, env, "make", "--no-print-directory", "build", "BIN="+b)

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain (go\S+)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no toolchain line: the compiler version is part of every bootstrap")
	}
	toolchain := string(m[1])
	for _, fn := range functions {
		x, err := os.ReadFile(filepath.Join(a, fn, "bootstrap"))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, fn, "bootstrap"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s: the bootstraps of two commits of the same source differ (%x, %d bytes vs %x, %d bytes)",
				fn, sha256.Sum256(x), len(x), sha256.Sum256(y), len(y))
		}
		info := run(t, root, nil, "go", "version", "-m", filepath.Join(a, fn, "bootstrap"))
		if !strings.Contains(info, ": "+toolchain+"\n") {
			t.Errorf("%s: built with another toolchain than go.mod's %s:\n%s", fn, toolchain, info)
		}
		if strings.Contains(info, "vcs.") {
			t.Errorf("%s: the bootstrap carries VCS stamps:\n%s", fn, info)
		}
		t.Logf("%s: %d bytes, sha256 %x", fn, len(x), sha256.Sum256(x))
	}
}
