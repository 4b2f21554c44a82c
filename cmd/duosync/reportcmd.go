package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/duosync/duosync/journal"
	"github.com/duosync/duosync/report"
)

func runReport(ctx context.Context, env Env, args []string) error {
	var configPath, stateDir, format string
	var last, send bool
	f := newFlagSet("report", "duosync report [RUN_ID|--last] [--format text|csv|json|html] [--send]", env.Stdout)
	f.String(&configPath, "c", "DUOSYNC_CONFIG", "", "config `FILE`")
	f.String(&stateDir, "state-dir", "DUOSYNC_STATE_DIR", "", "state `DIR` holding the journal")
	f.String(&format, "format", "", "text", "output format: text, csv, json or html")
	f.Bool(&last, "last", "the newest run (the default when no RUN_ID is given)")
	f.Bool(&send, "send", "email the report again (report.email in the config)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if len(f.Args()) > 1 || (last && len(f.Args()) == 1) {
		return usageErrorf("report: give one RUN_ID or --last")
	}
	render := map[string]func(*bytes.Buffer, *report.Report) error{
		"text": func(b *bytes.Buffer, r *report.Report) error { return report.WriteText(b, r) },
		"csv":  func(b *bytes.Buffer, r *report.Report) error { return report.WriteCSV(b, r) },
		"json": func(b *bytes.Buffer, r *report.Report) error { return report.WriteJSON(b, r) },
		"html": func(b *bytes.Buffer, r *report.Report) error { return report.WriteHTML(b, r) },
	}[format]
	if render == nil {
		return usageErrorf("report: --format %q: use text, csv, json or html", format)
	}
	j, cfg, dir, err := openJournal(env, configPath, stateDir)
	if err != nil {
		return err
	}
	defer j.Close()

	var id string
	if len(f.Args()) == 1 {
		id = f.Args()[0]
	} else {
		r, err := j.LastRun(ctx, "")
		if errors.Is(err, journal.ErrNotFound) {
			return usageErrorf("report: the journal holds no runs yet")
		} else if err != nil {
			return err
		}
		id = r.ID
	}
	raw, err := j.Report(ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return usageErrorf("report: no report for run %q (see duosync history)", id)
	} else if err != nil {
		return err
	}
	rep, err := report.ReadJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("report of run %s: %w", id, err)
	}
	if send {
		return resend(ctx, env, cfg, dir, j, rep)
	}
	var buf bytes.Buffer
	if err := render(&buf, rep); err != nil {
		return err
	}
	_, err = env.Stdout.Write(buf.Bytes())
	return err
}

// resend emails a stored report again, attaching its CSV as written on disk
// (re-rendered from the journal when the file is gone).
func resend(ctx context.Context, env Env, cfg *Config, stateDir string, j *journal.Journal, rep *report.Report) error {
	get := env.Getenv
	es, err := resolveEmail(cfg, get, get("DUOSYNC_ALLOW_INSECURE_SECRET_FILES") == "1")
	if err != nil {
		return err
	}
	ec := (&settings{email: es}).emailConfig()
	if ec.Addr == "" {
		return usageErrorf("report --send: report.email.smtp (SMTP_ADDR) is not set")
	}
	dir := cfg.absFrom(cfg.Report.Dir)
	if dir == "" {
		dir = filepath.Join(stateDir, "reports")
	}
	d, err := report.Resend(ctx, dir, ec, rep, nil)
	msg := ""
	if d.EmailErr != nil {
		msg = d.EmailErr.Error()
	}
	sent := time.Time{}
	if rep.Email != nil {
		sent = rep.Email.SentAt
	}
	if d.Attempted {
		if jerr := j.SetEmailResult(ctx, rep.RunID, sent, msg); jerr != nil {
			return errors.Join(err, jerr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Report of run %s sent to %s.\n", rep.RunID, strings.Join(ec.To, ", "))
	return nil
}
