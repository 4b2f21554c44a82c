package main

import (
	"context"
	"fmt"
	"time"

	dsync "github.com/duosync/duosync/sync"
)

func runPlan(ctx context.Context, env Env, args []string) error {
	var c commonFlags
	var out string
	var detailed bool
	f := newFlagSet("plan", "duosync plan [-c FILE] [--source PATH|servicenow] [-o plan.json] [--detailed-exitcode]", env.Stdout)
	c.register(f)
	f.String(&out, "o", "", "", "save the plan to `FILE` for `duosync apply FILE`")
	f.Bool(&detailed, "detailed-exitcode", "exit 2 when changes are pending, 0 when there are none")
	if err := f.Parse(args); err != nil {
		return err
	}
	if len(f.Args()) > 0 {
		return usageErrorf("plan: unexpected argument %q", f.Args()[0])
	}
	s, err := resolveSettings(env, f, &c, true)
	if err != nil {
		return err
	}
	r, err := newRun(ctx, env, s, "plan", "plan")
	if err != nil {
		return err
	}
	defer r.close()
	return r.finish(ctx, r.planOnly(ctx, out, detailed))
}

// planOnly computes and prints the plan, and saves it when asked.
func (r *run) planOnly(ctx context.Context, out string, detailed bool) error {
	if err := r.makePlan(ctx); err != nil {
		if r.guardErr != nil {
			fmt.Fprintf(r.env.Stdout, "\nA guard would stop apply: %v\n", r.guardErr)
		}
		return err
	}
	if out != "" {
		sp := dsync.NewSavedPlan(r.plan, version, time.Now(), dsync.SourceInfo{Description: r.src.describe, SHA256: r.src.sha256}, r.s.policy)
		sp.RunID, sp.DuoHost = r.id, r.s.duoHost
		if err := dsync.WritePlanFile(out, sp); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "\nSaved the plan to %s. To apply exactly this plan: duosync apply %s\n", out, out)
	}
	if detailed && r.plan.HasChanges() {
		return withCode(exitChanges, silentError("changes pending"))
	}
	return nil
}

// makePlan runs the read-only part of the pipeline and prints the plan.
func (r *run) makePlan(ctx context.Context) error {
	if err := r.readSource(ctx); err != nil {
		r.beginQuietly(ctx)
		return err
	}
	if err := r.begin(ctx); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := r.readDuo(ctx); err != nil {
		return err
	}
	guardErr := r.diff(ctx)
	if r.quietPlan {
		fmt.Fprintln(r.env.Stdout, dsync.SummaryLine(r.plan))
	} else if err := dsync.Render(r.env.Stdout, r.plan); err != nil {
		return err
	}
	return guardErr
}

// beginQuietly records a run whose source could not be read, so that the
// journal lists it too.
func (r *run) beginQuietly(ctx context.Context) {
	if err := r.begin(ctx); err != nil {
		r.log.Error("journal: begin run", "err", err)
	}
}
