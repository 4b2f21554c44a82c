package report

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// Delivery is what Publish and Resend did.
type Delivery struct {
	Paths     Paths
	Attempted bool  // an email was tried
	EmailErr  error // why it failed; nil when sent or not attempted
}

// Publish is the end of a run: it writes the report files to dir first,
// then, when cfg is set and ShouldSend agrees, emails them with the CSV
// from disk attached, and records the outcome in r.Email and in the JSON on
// disk. A failed email is logged and returned in Delivery.EmailErr, never as
// the error: it must neither lose the report nor change the run's exit
// code. The error is for the files only.
func Publish(ctx context.Context, dir string, cfg *EmailConfig, r *Report, log *slog.Logger) (Delivery, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	paths, err := WriteFiles(dir, r)
	if err != nil {
		return Delivery{}, err
	}
	log.Info("report written", "run_id", r.RunID, "text", paths.Text, "csv", paths.CSV, "json", paths.JSON, "html", paths.HTML)
	d := Delivery{Paths: paths}
	if cfg == nil {
		return d, nil
	}
	if !ShouldSend(*cfg, r) {
		log.Info("report email not needed", "run_id", r.RunID, "when", cfg.When)
		return d, nil
	}
	return deliver(ctx, dir, *cfg, r, d, log)
}

// Resend emails a report again (`duosync report RUN_ID --send`), whatever
// cfg.When says, attaching the CSV written for the run when it is still in
// dir (and writing the files first when it is not).
func Resend(ctx context.Context, dir string, cfg EmailConfig, r *Report, log *slog.Logger) (Delivery, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	paths, err := PathsFor(dir, r.RunID)
	if err != nil {
		return Delivery{}, err
	}
	if _, err := os.Stat(paths.CSV); errors.Is(err, fs.ErrNotExist) {
		if paths, err = WriteFiles(dir, r); err != nil {
			return Delivery{}, err
		}
	}
	d, err := deliver(ctx, dir, cfg, r, Delivery{Paths: paths}, log)
	if err != nil {
		return d, err
	}
	return d, d.EmailErr
}

func deliver(ctx context.Context, dir string, cfg EmailConfig, r *Report, d Delivery, log *slog.Logger) (Delivery, error) {
	d.Attempted = true
	csvData, err := os.ReadFile(d.Paths.CSV)
	if err != nil {
		return d, fmt.Errorf("attach CSV report: %w", err)
	}
	status := &EmailStatus{To: append([]string(nil), cfg.To...)}
	if d.EmailErr = Send(ctx, cfg, r, csvData); d.EmailErr != nil {
		status.Error = d.EmailErr.Error()
		log.Warn("report email failed; the report is on disk", "run_id", r.RunID, "smtp", cfg.Addr,
			"path", d.Paths.HTML, "err", d.EmailErr)
	} else {
		status.SentAt = time.Now().UTC()
		log.Info("report emailed", "run_id", r.RunID, "smtp", cfg.Addr, "to", len(cfg.To))
	}
	r.Email = status
	// Rewriting keeps the CSV byte for byte and records the email in the
	// JSON, text and HTML.
	if _, err := WriteFiles(dir, r); err != nil {
		return d, fmt.Errorf("record email status: %w", err)
	}
	return d, nil
}
