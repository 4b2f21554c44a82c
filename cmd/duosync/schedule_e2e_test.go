package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/duosync/duosync/journal"
)

// TestScheduleDaemon runs `duosync schedule` as a process with an @every 1s
// job whose runs last longer than a second (emulator latency): several runs
// complete, none overlap, skipped ticks are logged, SIGTERM during a run
// exits 0 after that run's report is written, and the metrics textfile
// agrees with the journal.
func TestScheduleDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of real schedule")
	}
	promFile := "metrics/duosync.prom" // relative to the config file, like every path in it
	sample, err := filepath.Abs(repoFile("sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSetup(t, `policy:
  max_creates: 10
duo:
  workers: 1
source:
  csv: [`+sample+`]
metrics:
  textfile: `+promFile+`
schedules:
  - name: every-second
    cron: "@every 1s"
    mode: apply
`, "--latency", "400ms")
	if err := os.MkdirAll(filepath.Join(s.dir, "metrics"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "schedule", "--log-format", "json")
	cmd.Env = append(cleanEnv(), s.env...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	j := openJournalT(t, s)
	// Wait until three runs finished and a fourth is running.
	waitFor(t, 60*time.Second, "three scheduled runs", func() bool {
		runs, _ := j.Runs(context.Background(), 0)
		done, running := 0, 0
		for _, r := range runs {
			if r.Status == journal.StatusRunning {
				running++
			} else {
				done++
			}
		}
		return done >= 3 && running == 1
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("schedule after SIGTERM: exit %d (%v), want 0\n%s", code, waitErr, stderr.String())
	}

	var runs []journal.RunSummary
	runs, err = j.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(runs, func(a, b int) bool { return runs[a].StartedAt.Before(runs[b].StartedAt) })
	for i, r := range runs {
		if r.Status == journal.StatusRunning || !r.HasReport {
			t.Errorf("run %s: status %s, report %v: the last run must finish and write its report", r.ID, r.Status, r.HasReport)
		}
		if i > 0 && r.StartedAt.Before(runs[i-1].FinishedAt) {
			t.Errorf("runs overlap: %s started %v before %s finished %v", r.ID, r.StartedAt, runs[i-1].ID, runs[i-1].FinishedAt)
		}
	}
	if peak := s.emu.stats(t).PeakConcurrency; peak != 1 {
		t.Errorf("peak concurrency at the emulator %d, want 1 (one worker, no overlapping runs)", peak)
	}
	if !strings.Contains(stderr.String(), "tick skipped") {
		t.Errorf("no skipped tick logged:\n%s", stderr.String())
	}

	// The metrics file parses and matches the journal's last run.
	f, err := os.Open(filepath.Join(s.dir, promFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("metrics textfile does not parse: %v", err)
	}
	last := runs[len(runs)-1]
	fam := families["duosync_last_run_timestamp_seconds"]
	if fam == nil || len(fam.Metric) == 0 {
		t.Fatalf("no duosync_last_run_timestamp_seconds in %v", families)
	}
	got := time.Unix(int64(fam.Metric[0].GetGauge().GetValue()), 0)
	if d := got.Sub(last.FinishedAt); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("last run timestamp %v, journal says %v", got, last.FinishedAt)
	}
	if fam := families["duosync_last_exit_code"]; fam == nil || int(fam.Metric[0].GetGauge().GetValue()) != *last.ExitCode {
		t.Errorf("last exit code in metrics %v, journal %d", fam, *last.ExitCode)
	}
}

func TestScheduleNextAndOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "duosync.yaml", `schedules:
  - name: hourly
    cron: "CRON_TZ=America/New_York 5 * * * *"
    mode: plan
  - name: bad
    cron: "5 * * *"
    mode: apply
`)
	r := runBin(t, []string{"DUOSYNC_CONFIG=" + cfg}, "schedule", "--next", "3")
	if r.code != exitUsage || !strings.Contains(r.stderr, `schedules[1] "bad": cron`) {
		t.Fatalf("a bad schedule must be a usage error naming the job and field: %v", r)
	}
	cfg = writeFile(t, dir, "good.yaml", "schedules:\n  - name: hourly\n    cron: \"CRON_TZ=America/New_York 5 * * * *\"\n    mode: plan\n")
	r = runBin(t, []string{"DUOSYNC_CONFIG=" + cfg}, "schedule", "--next", "3")
	if r.code != 0 || strings.Count(r.stdout, "hourly") != 3 || !strings.Contains(r.stdout, "America/New_York") {
		t.Fatalf("schedule --next 3: %v", r)
	}
	r = runBin(t, []string{"DUOSYNC_CONFIG=" + cfg}, "schedule", "--once", "nope")
	if r.code != exitUsage || !strings.Contains(r.stderr, "hourly") {
		t.Fatalf("schedule --once with an unknown job: %v", r)
	}
}

func openJournalT(t *testing.T, s *testSetup) *journal.Journal {
	t.Helper()
	waitFor(t, 30*time.Second, "the journal", func() bool {
		_, err := os.Stat(filepath.Join(s.state, "journal.db"))
		return err == nil
	})
	j, err := journal.Open(filepath.Join(s.state, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}
