package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	dsync "github.com/duosync/duosync/sync"
)

func runApply(ctx context.Context, env Env, args []string) error {
	var c commonFlags
	var yes bool
	f := newFlagSet("apply", "duosync apply [-c FILE] [--source ...] [plan.json] [--yes]", env.Stdout)
	c.register(f)
	f.Bool(&yes, "yes", "apply without asking (cron, systemd, Kubernetes)")
	if err := f.Parse(args); err != nil {
		return err
	}
	planFile := ""
	switch len(f.Args()) {
	case 0:
	case 1:
		planFile = f.Args()[0]
	default:
		return usageErrorf("apply: at most one saved plan, got %q", strings.Join(f.Args(), " "))
	}
	if !yes && !env.isTerminal() {
		return usageErrorf("apply: no terminal to confirm on: pass --yes to apply without asking")
	}
	s, err := resolveSettings(env, f, &c, true)
	if err != nil {
		return err
	}
	return applyWith(ctx, env, s, "apply", planFile, yes)
}

// applyWith runs an apply; the schedule daemon calls it too.
func applyWith(ctx context.Context, env Env, s *settings, command, planFile string, yes bool) error {
	r, err := newRun(ctx, env, s, "apply", command)
	if err != nil {
		return err
	}
	defer r.close()
	return r.finish(ctx, r.apply(ctx, planFile, yes))
}

func (r *run) apply(ctx context.Context, planFile string, yes bool) error {
	if planFile != "" {
		if err := r.loadSavedPlan(ctx, planFile); err != nil {
			return err
		}
	} else if err := r.makePlan(ctx); err != nil {
		return err // a failed read or a tripped guard: nothing is written
	}
	if !r.plan.HasChanges() {
		return r.writeBack(ctx)
	}
	if !yes {
		ok, err := r.confirm()
		if err != nil {
			return err
		}
		if !ok {
			return withCode(exitOK, silentError("apply cancelled: nothing was written"))
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	c, err := r.duoClient()
	if err != nil {
		return err
	}
	opts := dsync.ApplyOptions{RunID: r.id, Workers: r.s.workers, Logger: r.log}
	if r.env.isTerminal() {
		bar := progressbar.NewOptions(len(r.plan.Actions),
			progressbar.OptionSetWriter(r.env.Stderr), progressbar.OptionSetDescription("applying"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
		opts.OnProgress = func(done, total int) { _ = bar.Set(done) }
		defer bar.Finish()
	}
	res := dsync.Apply(ctx, r.plan, c, r.journal, opts)
	r.result = &res
	r.printResult()
	// An interrupted run leaves its write-backs to the next one, which
	// re-diffs and notes every request once.
	var werr error
	if ctx.Err() == nil {
		werr = r.writeBack(ctx)
	}
	switch {
	case res.Interrupted || ctx.Err() != nil:
		if ie := interruption(ctx); ie != nil {
			return ie
		}
		return context.Canceled
	case res.Partial():
		return withCode(exitPartial, silentError(fmt.Sprintf("%d actions failed (see the report)", res.Counts.Failed)))
	}
	return werr
}

// loadSavedPlan reads plan.json, checks it against what Duo has now, and
// refuses it when any object it depends on changed.
func (r *run) loadSavedPlan(ctx context.Context, path string) error {
	sp, err := dsync.ReadPlanFile(path)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if sp.DuoHost != "" && !strings.EqualFold(sp.DuoHost, r.s.duoHost) {
		return withCode(exitUsage, fmt.Errorf("%s was made for Duo host %s, not %s", path, sp.DuoHost, r.s.duoHost))
	}
	r.plan = sp.Plan
	r.src = sourceSummary{kind: "plan", describe: "saved plan " + path + " (" + sp.Source.Description + ")", sha256: sp.Source.SHA256}
	if err := r.begin(ctx); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	c, err := r.duoClient()
	if err != nil {
		return err
	}
	if err := dsync.CheckStale(ctx, r.plan, c); err != nil {
		var stale *dsync.StaleError
		if errors.As(err, &stale) {
			return withCode(exitError, err)
		}
		return err
	}
	fmt.Fprintf(r.env.Stdout, "Applying the saved plan %s (made %s by duosync %s); Duo has not changed since.\n",
		path, sp.Created.Local().Format(time.RFC1123), sp.Duosync)
	return dsync.Render(r.env.Stdout, r.plan)
}

// confirm asks at the terminal, as Terraform does.
func (r *run) confirm() (bool, error) {
	fmt.Fprintf(r.env.Stdout, "\nDo you want to apply these changes to Duo (%s)?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", r.s.duoHost)
	line, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, usageErrorf("apply: no answer on stdin")
	}
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(r.env.Stdout, "\nApply cancelled: nothing was written.")
		return false, nil
	}
	return true, nil
}

// printResult prints a short summary of what the apply did.
func (r *run) printResult() {
	c := r.result.Counts
	fmt.Fprintf(r.env.Stdout, "\nApply complete: %d users created, %d enrollment emails sent, %d memberships added, %d groups created, %d failed.\n",
		c.Created, c.Enrolled, c.MembershipsAdded, c.GroupsCreated, c.Failed)
	if r.result.Interrupted {
		fmt.Fprintf(r.env.Stdout, "Interrupted: %d actions were not started; a new run converges.\n", c.NotStarted)
	}
	for _, a := range r.result.Actions {
		if a.Outcome == dsync.OutcomeFailed || a.Outcome == dsync.OutcomeUnknown {
			fmt.Fprintf(r.env.Stdout, "  ! %s %s %s: %s\n", a.Action.Kind, a.Action.Username, a.Action.Group, a.Detail)
		}
	}
}
