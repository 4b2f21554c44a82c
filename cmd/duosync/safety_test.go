package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/journal"
	"github.com/duosync/duosync/report"
)

// sampleActions is what sample.csv plans against the demo seed: 7 creates,
// 7 enrollments and 9 memberships.
const sampleActions = 7 + 7 + 9

// testSetup is a seeded emulator process, a state directory and a config.
type testSetup struct {
	dir, state, cfg string
	emu             *duoEmu
	env             []string
}

func newSetup(t *testing.T, config string, emuArgs ...string) *testSetup {
	t.Helper()
	dir := t.TempDir()
	s := &testSetup{dir: dir, state: filepath.Join(dir, "state")}
	s.emu = startDuo(t, append([]string{"--seed", writeSeed(t, dir)}, emuArgs...)...)
	s.cfg = writeFile(t, dir, "duosync.yaml", config)
	s.env = append(s.emu.env(), "DUOSYNC_STATE_DIR="+s.state, "DUOSYNC_CONFIG="+s.cfg)
	return s
}

func (s *testSetup) run(t *testing.T, args ...string) result {
	t.Helper()
	return runBin(t, s.env, args...)
}

func TestGuardsTripAtTheirThresholds(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		trips  bool
		guard  string
	}{
		{"max_creates at the limit", "max_creates: 7", false, ""},
		{"max_creates one over", "max_creates: 6", true, "max_creates"},
		{"max_creates percent", "max_creates: 10%", true, "max_creates"}, // 10% of 3 users is 0
		{"max_changes at the limit", "max_creates: 7\n  max_changes: 23", false, ""},
		{"max_changes one over", "max_creates: 7\n  max_changes: 22", true, "max_changes"},
		{"max_invalid at the limit", "max_creates: 7\n  max_invalid: 1", false, ""},
		{"max_invalid percent at the limit", "max_creates: 7\n  max_invalid: 4%", false, ""}, // 4% of 25 rows is 1
		{"max_invalid one over", "max_creates: 7\n  max_invalid: 0", true, "max_invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSetup(t, "policy:\n  "+c.policy+"\n")
			r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv"))
			writes := s.emu.stats(t).Writes
			if !c.trips {
				if r.code != 0 || writes != sampleActions {
					t.Fatalf("want a full apply (%d writes), got %d writes: %v", sampleActions, writes, r)
				}
				return
			}
			if r.code != exitGuard || writes != 0 {
				t.Fatalf("want exit 4 and no write, got %d writes: %v", writes, r)
			}
			if !strings.Contains(r.stderr, c.guard) || !strings.Contains(r.stderr, "--force") {
				t.Errorf("the message does not name %s and --force:\n%s", c.guard, r.stderr)
			}
			// --force passes, and the report says so.
			r = s.run(t, "apply", "--yes", "--force", "--source", repoFile("sample.csv"))
			if r.code != 0 || s.emu.stats(t).Writes != sampleActions {
				t.Fatalf("--force: %v", r)
			}
			rep := lastReport(t, s)
			if !rep.GuardOverridden {
				t.Errorf("the report does not record the override")
			}
		})
	}
}

// lastReport reads the newest run's report from the journal.
func lastReport(t *testing.T, s *testSetup) *report.Report {
	t.Helper()
	r := s.run(t, "report", "--last", "--format", "json")
	if r.code != 0 {
		t.Fatalf("report --last: %v", r)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, r.stdout)
	}
	return &rep
}

func TestSavedPlanAppliesExactlyAndRefusesWhenStale(t *testing.T) {
	s := newSetup(t, "policy:\n  max_creates: 10\n")
	planFile := filepath.Join(s.dir, "plan.json")
	r := s.run(t, "plan", "--source", repoFile("sample.csv"), "-o", planFile)
	if r.code != 0 {
		t.Fatalf("plan -o: %v", r)
	}
	if fi, err := os.Stat(planFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v %v", fi, err)
	}

	// Someone creates one of the planned users in Duo meanwhile.
	c, err := duo.New(duo.Config{Host: s.emu.Host, IKey: s.emu.IKey, SKey: s.emu.SKey, CAFile: s.emu.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUser(context.Background(), duo.NewUser{Username: "john.smith@example.com"}); err != nil {
		t.Fatal(err)
	}
	before := s.emu.stats(t).Writes
	r = s.run(t, "apply", "--yes", planFile)
	if r.code != exitError || !strings.Contains(r.stderr, "stale") || !strings.Contains(r.stderr, "john.smith@example.com") {
		t.Fatalf("apply of a stale plan: want exit 1 naming the user, got %v", r)
	}
	if w := s.emu.stats(t).Writes - before; w != 0 {
		t.Fatalf("a stale plan made %d writes", w)
	}

	// A fresh plan applies exactly what it says, even if the source changes.
	r = s.run(t, "plan", "--source", repoFile("sample.csv"), "-o", planFile)
	if r.code != 0 {
		t.Fatalf("plan -o: %v", r)
	}
	empty := writeFile(t, s.dir, "empty.csv", "number,requested_for.email\n")
	before = s.emu.stats(t).Writes
	r = s.run(t, "apply", "--yes", "--source", empty, planFile)
	if r.code != 0 {
		t.Fatalf("apply plan.json: %v", r)
	}
	// 6 users to create, 6 enrollments, 8 memberships (john.smith exists now,
	// unenrolled and in no group: 1 enrollment and 1 membership).
	if w := s.emu.stats(t).Writes - before; w != 6+7+9 {
		t.Errorf("saved plan: %d writes, want %d", w, 6+7+9)
	}
}

func TestSecondRunExitsLockedAtOnce(t *testing.T) {
	s := newSetup(t, "policy:\n  max_creates: 10\nduo:\n  workers: 1\n", "--latency", "150ms")
	first := exec.Command(binPath, "apply", "--yes", "--source", repoFile("sample.csv"))
	first.Env = append(cleanEnv(), s.env...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	waitFor(t, 20*time.Second, "the first apply to write", func() bool { return s.emu.stats(t).Writes > 0 })

	start := time.Now()
	r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv"))
	took := time.Since(start)
	if r.code != exitLocked {
		t.Fatalf("second apply: want exit 5, got %v", r)
	}
	if !strings.Contains(r.stderr, "pid ") || !strings.Contains(r.stderr, `command "apply"`) {
		t.Errorf("the message does not say who holds the lock:\n%s", r.stderr)
	}
	t.Logf("second run refused after %v", took) // measured, not asserted: see the bench for speed
	if err := first.Wait(); err != nil {
		t.Fatalf("first apply: %v", err)
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	s := newSetup(t, "policy:\n  max_creates: 10\nduo:\n  workers: 2\n", "--latency", "200ms")
	cmd := exec.Command(binPath, "apply", "--yes", "--source", repoFile("sample.csv"))
	cmd.Env = append(cleanEnv(), s.env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first writes", func() bool { return s.emu.stats(t).Writes >= 2 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("exit %d (%v), want 143:\n%s", code, err, out.String())
	}
	if w := s.emu.stats(t).Writes; w >= sampleActions {
		t.Fatalf("SIGTERM did not stop the apply: %d writes", w)
	}
	rep := lastReport(t, s)
	if !rep.Interrupted || rep.ExitCode != 143 {
		t.Errorf("report: interrupted=%v exit=%d, want an interrupted report with exit 143", rep.Interrupted, rep.ExitCode)
	}
	j, err := journal.Open(filepath.Join(s.state, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := j.Runs(context.Background(), 0)
	j.Close()
	if err != nil || len(runs) != 1 || runs[0].Status != journal.StatusInterrupted {
		t.Fatalf("journal runs: %+v %v", runs, err)
	}
	// A new run converges.
	if r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv")); r.code != 0 {
		t.Fatalf("apply after SIGTERM: %v", r)
	}
	assertConverged(t, s)
}

// TestCrashAnywhereConverges kills apply with SIGKILL at a random moment,
// twenty times, then runs it to completion: Duo always ends in the desired
// state, no enrollment email is ever sent twice, and the journal opens and
// lists every run.
func TestCrashAnywhereConverges(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range rounds {
		s := newSetup(t, "policy:\n  max_creates: 10\nduo:\n  workers: 4\n", "--latency", "40ms")
		// Kill at a random moment: after a random number of writes (0: during
		// the reads) and a random part of a call's latency.
		afterWrites := int64(rng.IntN(sampleActions))
		jitter := time.Duration(rng.IntN(40)) * time.Millisecond
		cmd := exec.Command(binPath, "apply", "--yes", "--source", repoFile("sample.csv"))
		cmd.Env = append(cleanEnv(), s.env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "writes", func() bool { return s.emu.stats(t).Writes >= afterWrites })
		time.Sleep(jitter)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		killed := !cmd.ProcessState.Exited()
		delay := fmt.Sprintf("%d writes + %v", afterWrites, jitter)

		r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv"))
		if r.code != 0 {
			t.Fatalf("round %d (killed after %v): re-run: %v", i, delay, r)
		}
		assertConverged(t, s)
		h := s.run(t, "history", "--limit", "0")
		// The header, the killed apply (unless it died before journaling its
		// start), the re-run, and assertConverged's plan.
		lines := strings.Count(h.stdout, "\n")
		if h.code != 0 || lines < 3 || lines > 4 || (lines == 4 && killed && !strings.Contains(h.stdout, "crashed")) {
			t.Fatalf("round %d: history after a crash: %v", i, h)
		}
	}
}

// assertConverged checks the emulator holds exactly the desired users and
// memberships and that no enrollment email went twice to anyone.
func assertConverged(t *testing.T, s *testSetup) {
	t.Helper()
	st := s.emu.state(t)
	seen := map[string]int{}
	for _, u := range st.Users {
		seen[u.Username]++
		if want, ok := wantDemoUsers[u.Username]; ok && !sameSet(u.Groups, want) {
			t.Errorf("user %s: groups %v, want %v", u.Username, u.Groups, want)
		}
	}
	for name := range wantDemoUsers {
		if seen[name] != 1 {
			t.Errorf("user %s exists %d times", name, seen[name])
		}
	}
	if len(st.Users) != len(wantDemoUsers)+3 {
		t.Errorf("Duo holds %d users, want %d", len(st.Users), len(wantDemoUsers)+3)
	}
	sent := map[string]int{}
	for _, m := range st.Outbox {
		sent[m.Email]++
		if sent[m.Email] > 1 {
			t.Errorf("enrollment email sent twice to %s", m.Email)
		}
	}
	if r := s.run(t, "plan", "--detailed-exitcode", "--source", repoFile("sample.csv")); r.code != 0 {
		t.Errorf("plan after convergence: want no changes, got %v", r)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
