package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/duosync/duosync/journal"
	"github.com/duosync/duosync/statedir"
)

// openJournal opens the journal of the configured state directory for the
// read-only commands (history, report).
func openJournal(env Env, configPath, stateDirFlag string) (*journal.Journal, *Config, string, error) {
	cfg, err := loadConfig(configPath, env.Getenv)
	if err != nil {
		return nil, nil, "", err
	}
	dirSetting := pick(stateDirFlag != "", stateDirFlag, env.Getenv("DUOSYNC_STATE_DIR"), cfg.absFrom(cfg.StateDir))
	dir, err := statedir.Resolve(dirSetting)
	if err != nil {
		return nil, nil, "", withCode(exitUsage, fmt.Errorf("state directory: %w", err))
	}
	j, err := journal.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("journal: %w", err)
	}
	return j, cfg, dir, nil
}

func runHistory(ctx context.Context, env Env, args []string) error {
	var configPath, stateDir string
	var limit int
	f := newFlagSet("history", "duosync history [-c FILE] [--limit N]", env.Stdout)
	f.String(&configPath, "c", "DUOSYNC_CONFIG", "", "config `FILE`")
	f.String(&stateDir, "state-dir", "DUOSYNC_STATE_DIR", "", "state `DIR` holding the journal")
	f.Int(&limit, "limit", "", 20, "show the newest `N` runs (0: all)")
	if err := f.Parse(args); err != nil {
		return err
	}
	j, _, _, err := openJournal(env, configPath, stateDir)
	if err != nil {
		return err
	}
	defer j.Close()
	runs, err := j.Runs(ctx, limit)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(env.Stdout, "No runs in the journal yet.")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tSTARTED\tMODE\tSTATUS\tEXIT\tCREATED\tENROLLED\tADDED\tFAILED\tEMAIL")
	for _, r := range runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = fmt.Sprint(*r.ExitCode)
		}
		email := r.EmailStatus
		if email == "" {
			email = "-"
		}
		status := r.Status
		if r.Forced {
			status += " (forced)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.StartedAt.Local().Format(time.DateTime), r.Mode, status, exit,
			r.Counts["created"], r.Counts["enrollments_sent"], r.Counts["memberships_added"], r.Counts["failed"], email)
	}
	return tw.Flush()
}
