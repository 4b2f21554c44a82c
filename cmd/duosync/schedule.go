package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/duosync/duosync/schedules"
	"github.com/duosync/duosync/statedir"
)

func runSchedule(ctx context.Context, env Env, args []string) error {
	var c commonFlags
	var next int
	var once string
	f := newFlagSet("schedule", "duosync schedule [-c FILE] [--next N] [--once JOB]", env.Stdout)
	c.register(f)
	f.Int(&next, "next", "", 0, "print the next `N` times of each job, in its time zone, and exit")
	f.String(&once, "once", "", "", "run the `JOB` named now, once, and exit with its exit code")
	if err := f.Parse(args); err != nil {
		return err
	}
	if len(f.Args()) > 0 {
		return usageErrorf("schedule: unexpected argument %q", f.Args()[0])
	}
	cfg, err := loadConfig(c.configPath, env.Getenv)
	if err != nil {
		return err
	}
	if err := schedules.Validate(cfg.Schedules); err != nil {
		return usageErrorf("%s: %v", cfg.describe(), err)
	}
	if next > 0 {
		ups, err := schedules.Next(cfg.Schedules, time.Now(), next)
		if err != nil {
			return usageErrorf("%v", err)
		}
		return schedules.FormatNext(env.Stdout, ups)
	}
	if len(cfg.Schedules) == 0 {
		return usageErrorf("schedule: %s has no schedules: list", cfg.describe())
	}
	logger, err := newLogger(env.Stderr, pick(f.Set("log-format"), c.logFormat, env.Getenv("DUOSYNC_LOG_FORMAT"), cfg.Log.Format),
		pick(f.Set("log-level"), c.logLevel, env.Getenv("DUOSYNC_LOG_LEVEL"), cfg.Log.Level))
	if err != nil {
		return err
	}

	// Each tick re-reads the configuration (and the secrets), so that an
	// edit or a rotated key takes effect without a restart.
	runJob := func(ctx context.Context, job schedules.Job) error {
		jc := c
		if len(job.Source) > 0 {
			jc.sources = job.Source
		}
		s, err := resolveSettings(env, f, &jc, true)
		if err != nil {
			return err
		}
		if job.EmailWhen != "" {
			s.email.when = job.EmailWhen
		}
		jobEnv := env
		jobEnv.Stdout = io.Discard // the plan goes to the report, not to the daemon's output
		jobEnv.IsTerminal = func() bool { return false }
		command := "schedule/" + job.Name
		if job.Mode == schedules.ModePlan {
			r, err := newRun(ctx, jobEnv, s, "plan", command)
			if err != nil {
				return err
			}
			defer r.close()
			err = r.finish(ctx, r.planOnly(ctx, "", false))
			return err
		}
		err = applyWith(ctx, jobEnv, s, command, "", true)
		if errors.Is(err, statedir.ErrLocked) {
			return fmt.Errorf("%w: %w", schedules.ErrSkipped, err)
		}
		return err
	}
	runner, err := schedules.NewRunner(cfg.Schedules, runJob, logger)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if once != "" {
		err := runner.RunOnce(ctx, once)
		if errors.Is(err, schedules.ErrUnknownJob) {
			return usageErrorf("schedule --once: %v", err)
		}
		return err
	}
	// SIGTERM stops the daemon after the running job finished: exit 0.
	return runner.Run(ctx)
}
