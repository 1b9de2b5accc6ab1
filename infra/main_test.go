package main

import (
	"encoding/json"
	"fmt"
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

// cdkCLI returns the CDK CLI that `make cdk-deps` installs (or ZL_CDK_CLI), failing the test
// with the fix when it is missing: the CLI is what users run, so it is tested, not skipped.
func cdkCLI(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ZL_CDK_CLI"); p != "" {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(wd), ".local", "cdk", "node_modules", ".bin", "cdk")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("CDK CLI not found at %s: run `make cdk-deps` (or set ZL_CDK_CLI)", p)
	}
	return p
}

// cliRepo lays out a throwaway repository whose cdk.json runs this test binary's main() the
// way the real cdk.json runs the app (from infra/), with placeholder bootstraps in bin/.
func cliRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	app := fmt.Sprintf("cd infra && %s=1 %s -test.run=^$", runMainEnv, os.Args[0])
	cfg, _ := json.Marshal(map[string]any{"app": app, "output": "cdk.out", "notices": false,
		"versionReporting": false, "context": map[string]any{"cli-telemetry": false}})
	files := map[string]string{"cdk.json": string(cfg), "infra/.keep": ""}
	for _, fn := range []string{"acquire", "admin", "aggregator"} {
		files["bin/"+fn+"/bootstrap"] = "#!/bin/sh\n# " + fn + "\n"
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runCLI runs `cdk synth` in root with extra arguments and returns its combined output.
func runCLI(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cdkCLI(t), append([]string{"synth", "--quiet", "--no-notices",
		"--no-version-reporting", "--no-lookups"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=1",
		"AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCLISlowSynth runs the real CDK CLI with the slow-synthesis threshold at 0 ms, so the app
// writes the performance counters file the CLI names with a path relative to cdk.json's
// folder, as every synthesis on a loaded 2-core machine does (the default threshold is 10 s).
func TestCLISlowSynth(t *testing.T) {
	root := cliRepo(t)
	out, err := runCLI(t, root, "-c", "@aws-cdk/core.slowSynthThreshold=0", "-c", "alarms=false",
		"-c", "stackName=SlowSynth")
	if err != nil {
		t.Fatalf("cdk synth with slowSynthThreshold=0: %v\n%s", err, out)
	}
	for _, f := range []string{"performance-counters.json", "SlowSynth.template.json", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(root, "cdk.out", f)); err != nil {
			t.Errorf("cdk.out/%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "infra", "cdk.out")); err == nil {
		t.Error("infra/cdk.out written: a CLI path was resolved against infra/")
	}
}

// TestCLIBadContextShowsTheError runs the real CLI with an invalid context value: the app's own
// message must reach the user, not an ENOENT about the CLI's error file.
func TestCLIBadContextShowsTheError(t *testing.T) {
	root := cliRepo(t)
	out, err := runCLI(t, root, "-c", "alarmTopicArn=not-an-arn")
	if err == nil {
		t.Fatalf("cdk synth accepted alarmTopicArn=not-an-arn:\n%s", out)
	}
	if strings.Contains(out, "ENOENT") {
		t.Errorf("the error is masked by ENOENT:\n%s", out)
	}
	if !strings.Contains(out, "alarmTopicArn") || !strings.Contains(out, "not-an-arn") {
		t.Errorf("the output does not name the bad setting:\n%s", out)
	}
}
