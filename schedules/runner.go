package schedules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrSkipped marks a run that did not happen and is not a failure: the run
// func wraps it when another run holds the state lock (a manual `duosync
// apply`, say), and the Runner returns it for a tick that came while another
// job was still running. The Runner logs such a tick as skipped.
var ErrSkipped = errors.New("skipped")

// ErrUnknownJob is returned by RunOnce for a name no job has.
var ErrUnknownJob = errors.New("unknown schedule")

// Default bounds of Runner's shutdown.
const (
	DefaultStopTimeout   = 5 * time.Minute
	DefaultCancelTimeout = 30 * time.Second
)

// Runner runs jobs on their schedules, one run at a time.
type Runner struct {
	// StopTimeout bounds how long Run, once its context is cancelled, lets
	// a running job go on to finish by itself.
	StopTimeout time.Duration
	// CancelTimeout bounds how long Run then waits, after cancelling the
	// job's context, for it to return (it should write its report and stop).
	CancelTimeout time.Duration

	entries []entry
	run     func(ctx context.Context, job Job) error
	log     *slog.Logger

	// busy is held while any job runs. SkipIfStillRunning only stops a job
	// from overlapping itself; all jobs share the one state lock, so a tick
	// of another job that came meanwhile is skipped here, and logged.
	busy    sync.Mutex
	running atomic.Pointer[string] // name of the job holding busy, for logs
}

type entry struct {
	job   Job
	sched cron.Schedule
}

// NewRunner validates jobs and returns a Runner that calls run for each
// tick. A nil logger discards logs.
func NewRunner(jobs []Job, run func(ctx context.Context, job Job) error, logger *slog.Logger) (*Runner, error) {
	if run == nil {
		return nil, errors.New("schedules: nil run func")
	}
	if err := Validate(jobs); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		StopTimeout:   DefaultStopTimeout,
		CancelTimeout: DefaultCancelTimeout,
		run:           run,
		log:           logger,
	}
	for _, j := range jobs {
		sched, err := parseSpec(j.Cron)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: cron: %w", j.Name, err)
		}
		r.entries = append(r.entries, entry{job: j, sched: sched})
	}
	return r, nil
}

// Jobs returns the runner's jobs in config order.
func (r *Runner) Jobs() []Job {
	out := make([]Job, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.job
	}
	return out
}

// Run runs every job on its schedule until ctx is cancelled (SIGTERM). Then
// it starts no new run, waits up to StopTimeout for a running job to finish,
// then cancels that job's context and waits up to CancelTimeout more. It
// returns nil once nothing runs, or an error if a job outlived both bounds.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.entries) == 0 {
		return errors.New("schedule: no jobs in the config's schedules list")
	}
	// Jobs must not stop at the first SIGTERM: they get their own context,
	// cancelled only once StopTimeout has passed.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()

	cl := cronLogger{r.log}
	c := cron.New(cron.WithLogger(cl), cron.WithChain(cron.Recover(cl)))
	ids := map[cron.EntryID]string{}
	for _, e := range r.entries {
		// The skip wrapper is per job, with a logger that names the job.
		jl := cronLogger{r.log.With("job", e.job.Name)}
		job := cron.FuncJob(func() { _ = r.runJob(jobCtx, e.job) })
		ids[c.Schedule(e.sched, cron.NewChain(cron.SkipIfStillRunning(jl)).Then(job))] = e.job.Name
	}
	c.Start()
	for _, en := range c.Entries() {
		r.log.Info("schedule: job scheduled", "job", ids[en.ID], "next", en.Next)
	}
	r.log.Info("schedule: running", "jobs", len(r.entries))

	<-ctx.Done()
	done := c.Stop().Done()
	if name := r.running.Load(); name != nil {
		r.log.Info("schedule: stopping; waiting for the running job", "job", *name, "timeout", r.StopTimeout)
	}
	select {
	case <-done:
		r.log.Info("schedule: stopped")
		return nil
	case <-time.After(r.StopTimeout):
	}
	r.log.Warn("schedule: running job did not finish in time; cancelling it", "timeout", r.StopTimeout)
	cancelJobs()
	select {
	case <-done:
		r.log.Info("schedule: stopped")
		return nil
	case <-time.After(r.CancelTimeout):
		return fmt.Errorf("schedule: a job was still running %v after the stop began, despite its cancel", r.StopTimeout+r.CancelTimeout)
	}
}

// RunOnce runs the named job now and returns its run func's error as is, so
// that the caller can map it to an exit code.
func (r *Runner) RunOnce(ctx context.Context, name string) error {
	for _, e := range r.entries {
		if e.job.Name == name {
			return r.runJob(ctx, e.job)
		}
	}
	names := make([]string, len(r.entries))
	for i, e := range r.entries {
		names[i] = e.job.Name
	}
	return fmt.Errorf("%w %q (known: %v)", ErrUnknownJob, name, names)
}

// runJob makes one run of j, unless another job is running, and logs its
// start and its outcome.
func (r *Runner) runJob(ctx context.Context, j Job) (err error) {
	log := r.log.With("job", j.Name, "mode", j.Mode)
	if !r.busy.TryLock() {
		other := "?"
		if name := r.running.Load(); name != nil {
			other = *name
		}
		log.Info("schedule: tick skipped: another job is running", "running", other)
		return fmt.Errorf("job %q: %w: job %q is running", j.Name, ErrSkipped, other)
	}
	r.running.Store(&j.Name)
	defer func() {
		r.running.Store(nil)
		r.busy.Unlock()
	}()

	start := time.Now()
	log.Info("schedule: run started")
	// A panic must not escape: robfig's SkipIfStillRunning would lose its
	// token and never run this job again.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job %q panicked: %v", j.Name, p)
			log.Error("schedule: run panicked", "error", err, "stack", string(debug.Stack()))
		}
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case err == nil:
			log.Info("schedule: run finished", "duration", took)
		case errors.Is(err, ErrSkipped):
			log.Info("schedule: tick skipped", "reason", err.Error(), "duration", took)
		default:
			log.Error("schedule: run failed", "error", err, "duration", took)
		}
	}()
	return r.run(ctx, j)
}

// cronLogger adapts slog to robfig/cron's Logger. Cron's own chatter (wake,
// run, schedule) goes to Debug; a skipped tick is worth an Info line.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.l.Info("schedule: tick skipped: previous run still running")
		return
	}
	c.l.Debug("cron: "+msg, kv...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append([]any{"error", err}, kv...)...)
}
