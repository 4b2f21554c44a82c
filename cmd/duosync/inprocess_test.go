package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duosync/duosync/duo/duotest"
)

// These tests call Run, the same code the binary runs, in-process.

func inProcessEnv(t *testing.T, emu *duotest.Server, stdin string, terminal bool) (Env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "duosync.yaml", "policy:\n  max_creates: 10\n")
	vars := map[string]string{
		"DUO_HOST": emu.Host(), "DUO_IKEY": emu.IKey(), "DUO_SKEY": emu.SKey(), "DUO_CA_FILE": emu.CAFile(),
		"DUOSYNC_CONFIG": cfg, "DUOSYNC_STATE_DIR": filepath.Join(dir, "state"), "DUOSYNC_LOG_FORMAT": "json",
	}
	var stdout, stderr bytes.Buffer
	return Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv:     func(k string) string { return vars[k] },
		IsTerminal: func() bool { return terminal },
	}, &stdout, &stderr
}

func newEmulator(t *testing.T) *duotest.Server {
	t.Helper()
	emu, err := duotest.NewServer(duotest.Options{Seed: demoSeed()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func TestApplyAsksOnATerminal(t *testing.T) {
	for _, c := range []struct {
		answer string
		writes int64
	}{{"no\n", 0}, {"\n", 0}, {"yes\n", sampleActions}} {
		emu := newEmulator(t)
		env, stdout, stderr := inProcessEnv(t, emu, c.answer, true)
		code := Run(context.Background(), []string{"apply", "--source", repoFile("sample.csv")}, env)
		if code != 0 {
			t.Fatalf("answer %q: exit %d\n%s\n%s", c.answer, code, stdout, stderr)
		}
		if !strings.Contains(stdout.String(), "Only 'yes' will be accepted") {
			t.Errorf("answer %q: no confirmation prompt:\n%s", c.answer, stdout)
		}
		if w := emu.Stats().Writes; w != c.writes {
			t.Errorf("answer %q: %d writes, want %d", c.answer, w, c.writes)
		}
	}
}

// A terminal that closes stdin without an answer is a usage error, not a
// silent success, and nothing is written.
func TestApplyWithoutAnAnswerExits64(t *testing.T) {
	emu := newEmulator(t)
	env, stdout, stderr := inProcessEnv(t, emu, "", true)
	if code := Run(context.Background(), []string{"apply", "--source", repoFile("sample.csv")}, env); code != exitUsage {
		t.Fatalf("exit %d, want 64\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr.String(), "no answer on stdin") || emu.Stats().Writes != 0 {
		t.Errorf("stderr %q, writes %d", stderr.String(), emu.Stats().Writes)
	}
}

func TestNoCommandPrintsUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), nil, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	if code != exitUsage || !strings.Contains(out.String(), "Commands:") || !strings.Contains(out.String(), "plan") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"completion", "bash"}, Env{Stdout: &out, Stderr: &errOut}); code != 0 || !strings.Contains(out.String(), "complete -F _duosync duosync") {
		t.Fatalf("completion bash: exit %d\n%s", code, out.String())
	}
}

func TestDemoRunsEndToEnd(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"demo", "--dir", filepath.Join(t.TempDir(), "demo")}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"Plan: 7 users to create, 7 enrollments to send, 9 memberships to add.",
		"Apply complete: 7 users created, 7 enrollment emails sent, 9 memberships added",
		"NEEDS A HUMAN",
		"No changes. Duo matches the approved requests.",
		"The HTML report",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
