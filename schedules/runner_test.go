package schedules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects JSON log lines from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the decoded log records whose message contains msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// concurrency tracks how many runs are in flight, and the peak.
type concurrency struct{ now, peak, started, finished atomic.Int32 }

func (c *concurrency) enter() {
	c.started.Add(1)
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (c *concurrency) leave() { c.now.Add(-1); c.finished.Add(1) }

// every is a test schedule finer than robfig's one-second @every.
type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The scenario of issue 7 with robfig's real @every 1s: each run lasts
// longer than a second, so ticks are skipped, runs never overlap, and a
// cancel (SIGTERM) during a run waits for it and returns nil.
func TestRunnerSkipsTicksAndWaitsForTheRunningJob(t *testing.T) {
	logger, logs := newLogger()
	var c concurrency
	var jobCtxErr atomic.Value
	r, err := NewRunner([]Job{{Name: "sync", Cron: "@every 1s", Mode: "apply"}},
		func(ctx context.Context, j Job) error {
			c.enter()
			defer c.leave()
			time.Sleep(1500 * time.Millisecond)
			jobCtxErr.Store(fmt.Sprint(ctx.Err()))
			return nil
		}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	waitFor(t, "the second run to start", func() bool { return c.started.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if got := c.finished.Load(); got != 2 {
		t.Errorf("Run returned with %d of 2 runs finished: it did not wait for the running one", got)
	}
	if p := c.peak.Load(); p != 1 {
		t.Errorf("peak concurrency %d, want 1", p)
	}
	if e := jobCtxErr.Load(); e != "<nil>" {
		t.Errorf("the job's context was %v during the graceful stop, want it not cancelled", e)
	}
	skips := logs.lines(t, "tick skipped: previous run still running")
	if len(skips) == 0 {
		t.Error("no skipped tick logged")
	}
	for _, s := range skips {
		if s["job"] != "sync" || s["level"] != "INFO" {
			t.Errorf("skip line %v: want job=sync at INFO", s)
		}
	}
	if n := len(logs.lines(t, "run finished")); n != 2 {
		t.Errorf("%d 'run finished' lines, want 2", n)
	}
	if len(logs.lines(t, "schedule: stopped")) != 1 {
		t.Error("no 'stopped' line logged")
	}
}

// Two jobs never run at once: they share the state lock anyway, so a tick
// of one while the other runs is skipped and logged.
func TestRunnerNeverOverlapsTwoJobs(t *testing.T) {
	logger, logs := newLogger()
	var c concurrency
	r, err := NewRunner([]Job{
		{Name: "a", Cron: "@every 1s", Mode: "apply"},
		{Name: "b", Cron: "@every 1s", Mode: "plan"},
	}, func(ctx context.Context, j Job) error {
		c.enter()
		defer c.leave()
		time.Sleep(60 * time.Millisecond)
		return nil
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	r.entries[0].sched = every(25 * time.Millisecond)
	r.entries[1].sched = every(35 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "six runs", func() bool { return c.finished.Load() >= 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := c.peak.Load(); p != 1 {
		t.Errorf("peak concurrency %d, want 1", p)
	}
	if len(logs.lines(t, "tick skipped: another job is running")) == 0 {
		t.Error("no tick skipped for another job's run")
	}
	if len(logs.lines(t, "run failed")) != 0 {
		t.Error("a skipped tick was logged as a failure")
	}
}

func TestRunOnceClassifiesOutcomes(t *testing.T) {
	logger, logs := newLogger()
	var runErr error
	r, err := NewRunner([]Job{{Name: "nightly", Cron: "@daily", Mode: "apply"}},
		func(ctx context.Context, j Job) error {
			if j.Name != "nightly" || j.Mode != "apply" {
				t.Errorf("run got job %+v", j)
			}
			return runErr
		}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := r.RunOnce(ctx, "nightly"); err != nil {
		t.Errorf("RunOnce = %v", err)
	}
	if len(logs.lines(t, "run started")) != 1 || len(logs.lines(t, "run finished")) != 1 {
		t.Error("start and finish not logged")
	}

	runErr = fmt.Errorf("another run holds the lock: %w", ErrSkipped)
	if err := r.RunOnce(ctx, "nightly"); !errors.Is(err, ErrSkipped) {
		t.Errorf("RunOnce = %v, want ErrSkipped returned as is", err)
	}
	skip := logs.lines(t, "schedule: tick skipped")
	if len(skip) != 1 || skip[0]["level"] != "INFO" || !strings.Contains(fmt.Sprint(skip[0]["reason"]), "holds the lock") {
		t.Errorf("skip lines %v: want one INFO line with the reason", skip)
	}

	runErr = errors.New("read Duo: 503")
	if err := r.RunOnce(ctx, "nightly"); err != runErr {
		t.Errorf("RunOnce = %v, want the run's error as is", err)
	}
	failed := logs.lines(t, "run failed")
	if len(failed) != 1 || failed[0]["level"] != "ERROR" || failed[0]["error"] != "read Duo: 503" || failed[0]["job"] != "nightly" {
		t.Errorf("failure lines %v", failed)
	}

	if err := r.RunOnce(ctx, "weekly"); !errors.Is(err, ErrUnknownJob) || !strings.Contains(err.Error(), `"weekly"`) {
		t.Errorf("RunOnce(unknown) = %v, want ErrUnknownJob naming it", err)
	}
}

// A panicking run is an error, and the job keeps being scheduled (robfig's
// SkipIfStillRunning would lose its token if the panic reached it).
func TestRunnerSurvivesPanics(t *testing.T) {
	logger, logs := newLogger()
	var calls atomic.Int32
	r, err := NewRunner([]Job{{Name: "p", Cron: "@hourly", Mode: "plan"}},
		func(ctx context.Context, j Job) error {
			calls.Add(1)
			panic("boom")
		}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RunOnce(context.Background(), "p"); err == nil || !strings.Contains(err.Error(), `job "p" panicked: boom`) {
		t.Errorf("RunOnce = %v, want the panic as an error", err)
	}
	r.entries[0].sched = every(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "three panicking runs", func() bool { return calls.Load() >= 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(logs.lines(t, "run panicked")) < 3 {
		t.Error("panics not logged")
	}
}

// A job that outlives StopTimeout gets its context cancelled; one that
// ignores that too makes Run return an error after CancelTimeout.
func TestRunnerStopBounds(t *testing.T) {
	for _, ignoresCancel := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignoresCancel=%v", ignoresCancel), func(t *testing.T) {
			logger, logs := newLogger()
			started := make(chan struct{}, 10)
			release := make(chan struct{})
			defer close(release)
			r, err := NewRunner([]Job{{Name: "slow", Cron: "@every 1s", Mode: "apply"}},
				func(ctx context.Context, j Job) error {
					started <- struct{}{}
					if ignoresCancel {
						<-release
						return nil
					}
					<-ctx.Done()
					return ctx.Err()
				}, logger)
			if err != nil {
				t.Fatal(err)
			}
			r.entries[0].sched = every(10 * time.Millisecond)
			r.StopTimeout = 50 * time.Millisecond
			r.CancelTimeout = 100 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-started
			cancel()
			err = <-done
			if len(logs.lines(t, "did not finish in time; cancelling it")) != 1 {
				t.Error("the cancel was not logged")
			}
			if ignoresCancel {
				if err == nil || !strings.Contains(err.Error(), "still running") {
					t.Errorf("Run = %v, want an error saying a job is still running", err)
				}
			} else if err != nil {
				t.Errorf("Run = %v, want nil once the cancelled job returned", err)
			}
		})
	}
}

func TestNewRunnerRejectsBadInput(t *testing.T) {
	run := func(context.Context, Job) error { return nil }
	if _, err := NewRunner([]Job{{Name: "x", Cron: "nope", Mode: "plan"}}, run, nil); err == nil ||
		!strings.Contains(err.Error(), `schedules[0] "x": cron:`) {
		t.Errorf("NewRunner(bad spec) = %v", err)
	}
	if _, err := NewRunner(nil, nil, nil); err == nil {
		t.Error("NewRunner(nil run) = nil error")
	}
	r, err := NewRunner(nil, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("Run with no jobs = nil, want an error")
	}
}
