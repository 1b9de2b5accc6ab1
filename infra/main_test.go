package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// runMainEnv makes the test binary run main() instead of the tests (see TestRunAsTheCLIDoes).
const runMainEnv = "ZAE_INFRA_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits 1 on error
		os.Exit(0)
	}
	if os.Getenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION") == "" {
		os.Setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
	}
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// TestRunAsTheCLIDoes runs the app the way `cdk synth` does (a new process in infra/, with a
// relative CDK_OUTDIR and the context in CDK_CONTEXT_JSON) in a throwaway repository layout, and
// checks that the assembly lands next to cdk.json, built from that repository's bin/, with the
// context applied and cdk-nag passing. The jsii kernel reads the environment when it starts, so
// the app runs in a child process (this test binary, running main()).
func TestRunAsTheCLIDoes(t *testing.T) {
	root := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "cdk.json"), `{"app": "cd infra && go run ."}`)
	for _, fn := range []string{"acquire", "admin", "aggregator"} {
		write(filepath.Join(root, "bin", fn, "bootstrap"), "#!/bin/sh\n# "+fn+"\n")
	}
	if err := os.MkdirAll(filepath.Join(root, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = filepath.Join(root, "infra")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "CDK_OUTDIR=cdk.out",
		`CDK_CONTEXT_JSON={"stackName": "MainTest", "tableName": "main-test-table", "alarms": "false"}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("app: %v\n%s", err, out)
	}
	out := filepath.Join(root, "cdk.out")
	raw, err := os.ReadFile(filepath.Join(out, "MainTest.template.json"))
	if err != nil {
		t.Fatalf("template not written next to cdk.json: %v", err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range tmpl.Resources {
		counts[r.Type]++
		if r.Type == "AWS::DynamoDB::Table" && r.Properties["TableName"] != "main-test-table" {
			t.Errorf("TableName = %v, want the context's main-test-table", r.Properties["TableName"])
		}
		if r.Type == "AWS::Lambda::Function" {
			key, _ := r.Properties["Code"].(map[string]any)["S3Key"].(string)
			hash := key[:len(key)-len(".zip")]
			if _, err := os.Stat(filepath.Join(out, "asset."+hash, "bootstrap")); err != nil {
				t.Errorf("function asset %s not staged: %v", hash, err)
			}
		}
	}
	if counts["AWS::DynamoDB::Table"] != 1 || counts["AWS::Lambda::Function"] != 3 {
		t.Errorf("resource counts %v", counts)
	}
	if counts["AWS::CloudWatch::Alarm"] != 0 {
		t.Errorf("%d alarms with context alarms=false", counts["AWS::CloudWatch::Alarm"])
	}
	// cdk-nag ran (the default) and found nothing: no error annotations in the assembly.
	meta, err := os.ReadFile(filepath.Join(out, "MainTest.metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries map[string][]struct{ Type string }
	if err := json.Unmarshal(meta, &entries); err != nil {
		t.Fatal(err)
	}
	for path, es := range entries {
		for _, e := range es {
			if e.Type == "aws:cdk:error" {
				t.Errorf("error annotation on %s", path)
			}
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cdk.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "infra", "limiterstack")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	got, _ := filepath.EvalSymlinks(repoRoot())
	want, _ := filepath.EvalSymlinks(root)
	if got != want {
		t.Errorf("repoRoot() = %q, want %q", got, want)
	}
}

// TestRunWithoutBuild checks that the app refuses to synthesize without the built functions,
// naming the fix, instead of producing a stack whose functions cannot start.
func TestRunWithoutBuild(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cdk.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = filepath.Join(root, "infra")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "CDK_OUTDIR=cdk.out")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("app succeeded without bin/*/bootstrap:\n%s", out)
	}
	if !strings.Contains(string(out), "make build") {
		t.Errorf("error does not say how to fix it:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "cdk.out", "manifest.json")); err == nil {
		t.Error("an assembly was written anyway")
	}
}
