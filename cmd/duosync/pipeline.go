package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/journal"
	"github.com/duosync/duosync/metrics"
	"github.com/duosync/duosync/report"
	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
	"github.com/duosync/duosync/statedir"
	dsync "github.com/duosync/duosync/sync"
)

// run is one pass of the pipeline (DESIGN.md): source → validate → desired
// state → read Duo → diff → guard → plan, and for apply: → apply → journal →
// report → email → write-back. Each stage is a method; what a stage learns is
// kept here for the report.
type run struct {
	env     Env
	s       *settings
	log     *slog.Logger
	id      string
	mode    string // "plan" or "apply"
	command string
	started time.Time

	journal *journal.Journal
	lock    *statedir.LockFile
	duo     *duo.Client
	sn      *servicenow.Client

	src        sourceSummary
	desired    dsync.Desired
	have       dsync.Have
	plan       dsync.Plan
	result     *dsync.Result
	overridden []*dsync.GuardError
	guardErr   *dsync.GuardError
	snFetch    servicenow.FetchInfo
	sysIDs     map[string]string // RITM number → sys_id, for write-back

	quietPlan bool // print only the plan's summary line (the demo's apply)

	report      *report.Report
	reportPaths report.Paths
}

// sourceSummary describes what was read, for the report header and saved plans.
type sourceSummary struct {
	kind     string
	files    []source.FileInfo
	sha256   string // of the CSV files together, or of the ServiceNow query
	describe string
	warnings []string
}

func newRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// newRun sets up logging and the state directory; apply also takes the lock
// and marks the runs a crash left behind.
func newRun(ctx context.Context, env Env, s *settings, mode, command string) (*run, error) {
	now := time.Now()
	r := &run{env: env, s: s, mode: mode, command: command, started: now, id: newRunID(now)}
	logger, err := newLogger(env.Stderr, s.logFormat, s.logLevel)
	if err != nil {
		return nil, err
	}
	r.log = logger.With("run_id", r.id)

	dir, err := statedir.Resolve(s.stateDir)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("state directory: %w", err))
	}
	if s.reportDir == "" {
		s.reportDir = filepath.Join(dir, "reports")
	}
	if mode == "apply" {
		host, _ := os.Hostname()
		r.lock, err = statedir.Lock(dir, statedir.Holder{PID: os.Getpid(), RunID: r.id, Command: command, StartedAt: now, Host: host})
		if err != nil {
			return nil, err
		}
	}
	r.journal, err = journal.Open(filepath.Join(dir, "journal.db"))
	if err != nil {
		r.close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if mode == "apply" {
		// Only a run holding the lock may decide that a "running" run is dead.
		if n, err := r.journal.MarkCrashed(ctx); err != nil {
			r.close()
			return nil, fmt.Errorf("journal: %w", err)
		} else if n > 0 {
			r.log.Warn("earlier runs were left running by a crash; marked interrupted", "runs", n)
		}
	}
	return r, nil
}

func (r *run) close() {
	if r.journal != nil {
		r.journal.Close()
	}
	if r.lock != nil {
		r.lock.Unlock()
	}
}

// begin records the run in the journal once the source is known.
func (r *run) begin(ctx context.Context) error {
	return r.journal.BeginRun(ctx, journal.Run{
		ID: r.id, Mode: r.mode, Command: r.command, Source: r.src.describe,
		SourceSHA256: r.src.sha256, DuoHost: r.s.duoHost, Version: version, StartedAt: r.started,
	})
}

// readSource reads the requests and builds the desired state. A broken
// source is an error: nothing is applied from it.
func (r *run) readSource(ctx context.Context) error {
	b, err := dsync.NewBuilder(r.s.mapping, r.s.filter)
	if err != nil {
		return usageErrorf("mapping: %v", err)
	}
	switch r.s.sourceKind {
	case "servicenow":
		if err := r.readServiceNow(ctx, b); err != nil {
			return err
		}
	default:
		if len(r.s.csvPaths) == 0 {
			return errNoSource
		}
		opts := source.CSVOptions{Encoding: r.s.encoding, Logger: r.log}
		res, err := source.ReadCSV(ctx, r.s.csvPaths, opts, addRequest(b))
		if err == nil && len(res.Conflicts) > 0 {
			// A RITM repeated with different content is a conflict: the
			// first copy was already emitted, so read again without any copy.
			if b, err = dsync.NewBuilder(r.s.mapping, r.s.filter); err != nil {
				return usageErrorf("mapping: %v", err)
			}
			drop := map[string]bool{}
			for _, n := range res.Conflicts {
				drop[n] = true
			}
			add := addRequest(b)
			res, err = source.ReadCSV(ctx, r.s.csvPaths, opts, func(req source.Request) error {
				if drop[req.Number()] {
					return nil
				}
				return add(req)
			})
		}
		r.src = sourceSummary{kind: "csv", files: res.Files, warnings: res.Warnings}
		r.src.describe = strings.Join(filePaths(res.Files), ", ")
		r.src.sha256 = combinedSHA(res.Files)
		if err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		for _, p := range res.Problems {
			b.AddProblem(p)
		}
	}
	r.desired = b.Finish()
	r.desired.Warnings = append(r.src.warnings, r.desired.Warnings...)
	return nil
}

// addRequest feeds the builder; its only errors are configuration errors
// (a mapping naming a column the source lacks): exit 64.
func addRequest(b *dsync.Builder) func(source.Request) error {
	return func(req source.Request) error {
		if err := b.Add(req); err != nil {
			return withCode(exitUsage, err)
		}
		return nil
	}
}

func filePaths(fs []source.FileInfo) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// readDuo reads the Duo users that can match the desired ones, and the groups.
func (r *run) readDuo(ctx context.Context) error {
	c, err := r.duoClient()
	if err != nil {
		return err
	}
	users, total, err := c.UsersFor(ctx, dsync.Usernames(r.desired))
	if err != nil {
		return fmt.Errorf("read Duo users: %w", err)
	}
	groups, err := c.Groups(ctx)
	if err != nil {
		return fmt.Errorf("read Duo groups: %w", err)
	}
	r.have = dsync.Have{Users: users, Groups: groups, Total: total}
	return nil
}

func (r *run) duoClient() (*duo.Client, error) {
	if r.duo != nil {
		return r.duo, nil
	}
	c, err := duo.New(duo.Config{
		Host: r.s.duoHost, IKey: r.s.duoIKey, SKey: r.s.duoSKey, CAFile: r.s.duoCAFile,
		ReadsPerMinute: r.s.readsPerMinute, WritesPerMinute: r.s.writesPerMinute,
		Logger: r.log, UserAgent: "duosync/" + version,
	})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("duo: %w", err))
	}
	r.duo = c
	return c, nil
}

// diff computes the plan and checks the guards.
func (r *run) diff(ctx context.Context) error {
	history, err := r.journal.Enrollments(ctx, dsync.Usernames(r.desired))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	r.plan = dsync.Diff(r.have, r.desired, history, r.s.policy, time.Now())
	return r.guard()
}

func (r *run) guard() error {
	overridden, err := dsync.CheckGuards(r.plan, r.desired, r.have.Total, r.s.policy, r.s.force)
	r.overridden = overridden
	for _, g := range overridden {
		r.log.Warn("guard overridden with --force", "guard", g.Guard, "detail", g.Error())
	}
	if err != nil {
		errors.As(err, &r.guardErr)
		return err
	}
	return nil
}

// finish writes the report (always, before any email), records the end of
// the run in the journal, emails the report when configured, and returns
// the run's final error (which decides the exit code).
func (r *run) finish(ctx context.Context, runErr error) error {
	// The run's context may be cancelled (a signal): the report and the
	// journal still get written, with a bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()

	code := exitCode(runErr)
	rep := r.buildReport(runErr, code)
	r.report = rep
	// The files are on disk before any email is tried; a failed email never
	// changes the exit code and never loses the report (report --send).
	// A plan run by hand at a terminal is not emailed; a scheduled one is.
	var email *report.EmailConfig
	if cfg := r.s.emailConfig(); cfg.Addr != "" && (r.mode == "apply" || !r.env.isTerminal()) {
		email = &cfg
	}
	d, err := report.Publish(ctx, r.s.reportDir, email, rep, r.log)
	if err != nil {
		r.log.Error("write report", "err", err)
	}
	r.reportPaths = d.Paths
	if r.env.isTerminal() && d.Paths.HTML != "" {
		fmt.Fprintf(r.env.Stdout, "\nReport: %s\n", d.Paths.HTML)
	}
	if d.Attempted {
		r.recordEmail(ctx, rep, d)
	}
	var rawJSON []byte
	if d.Paths.JSON != "" {
		rawJSON, _ = os.ReadFile(d.Paths.JSON)
	}
	if err := r.journal.FinishRun(ctx, r.id, journal.RunFinish{
		Status: journalStatus(code), ExitCode: code, Counts: summaryCounts(rep.Summary),
		Forced: len(r.overridden) > 0, Report: rawJSON,
	}); err != nil {
		r.log.Error("journal: finish run", "err", err)
	}
	r.writeMetrics(code, rep)
	return runErr
}

// writeMetrics writes the Prometheus textfile, when configured. A failure is
// logged and never fails the run.
func (r *run) writeMetrics(code int, rep *report.Report) {
	path := r.s.cfg.absFrom(r.s.cfg.Metrics.Textfile)
	if path == "" {
		return
	}
	m := metrics.RunMetrics{
		Mode: r.mode, Started: r.started, Finished: time.Now(), ExitCode: code,
		APICalls: rep.Summary.APICalls, RateLimited: rep.Summary.RateLimited, Retries: rep.Summary.Retries,
	}
	if r.result != nil {
		counts := map[[2]string]int{}
		for _, a := range r.result.Actions {
			counts[[2]string{string(a.Action.Kind), a.Outcome}]++
		}
		for k, n := range counts {
			m.Actions = append(m.Actions, metrics.ActionCount{Kind: k[0], Result: k[1], Count: n})
		}
	}
	if err := metrics.WriteTextfile(path, m); err != nil {
		r.log.Error("write metrics textfile", "path", path, "err", err)
	}
}

func journalStatus(code int) string {
	switch code {
	case exitOK, exitChanges:
		return journal.StatusOK
	case exitPartial:
		return journal.StatusPartial
	case exitGuard:
		return journal.StatusGuard
	case exitInterrupted, 143:
		return journal.StatusInterrupted
	}
	return journal.StatusFailed
}

// recordEmail journals an email attempt; a failure is logged with what to do.
func (r *run) recordEmail(ctx context.Context, rep *report.Report, d report.Delivery) {
	msg := ""
	if d.EmailErr != nil {
		msg = d.EmailErr.Error()
		r.log.Error("email report", "err", msg, "retry", "duosync report "+r.id+" --send")
	}
	sent := time.Time{}
	if rep.Email != nil {
		sent = rep.Email.SentAt
	}
	if err := r.journal.SetEmailResult(ctx, rep.RunID, sent, msg); err != nil {
		r.log.Error("journal: record email", "err", err)
	}
}

func (s *settings) emailConfig() report.EmailConfig {
	return report.EmailConfig{
		Addr: s.email.addr, TLS: s.email.tls, User: s.email.user, Password: s.email.password,
		From: s.email.from, To: s.email.to, When: s.email.when, CAFile: s.email.caFile,
	}
}
