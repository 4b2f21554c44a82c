package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Run statuses.
const (
	StatusRunning     = "running"
	StatusOK          = "ok"
	StatusPartial     = "partial"     // some actions failed
	StatusFailed      = "failed"      // a read or an internal error
	StatusGuard       = "guard"       // a guard tripped; nothing was written
	StatusInterrupted = "interrupted" // stopped by a signal, and finished cleanly
	StatusCrashed     = "crashed"     // left running: the process died (see MarkCrashed)
)

// Run is what is known of a run when it begins.
type Run struct {
	ID           string
	Mode         string // "plan" or "apply"
	Command      string // the subcommand ("apply", "schedule/hourly"), never the argv
	Source       string // file paths, or instance and query
	SourceSHA256 string
	DuoHost      string
	Version      string
	StartedAt    time.Time // zero: now
}

// RunFinish is what is known of a run when it ends.
type RunFinish struct {
	Status     string // one of the Status constants except running and crashed
	ExitCode   int
	Counts     map[string]int  // the report's summary counts
	Forced     bool            // a guard was overridden with --force
	Report     json.RawMessage // the report's JSON; nil if none
	FinishedAt time.Time       // zero: now
}

// RunSummary is one row of `duosync history`.
type RunSummary struct {
	Run
	FinishedAt  time.Time // zero while running or after a crash
	Status      string
	ExitCode    *int // nil until finished
	Counts      map[string]int
	Forced      bool
	HasReport   bool
	EmailStatus string // "", "sent" or "failed"
	EmailAt     time.Time
	EmailError  string
	Actions     ActionCounts
}

// ActionCounts counts a run's journaled actions by result.
type ActionCounts struct {
	Total, OK, Failed, Unknown, NotStarted int
	Unfinished                             int // started, never finished: maybe done
}

// BeginRun records the start of a run, with status running.
func (j *Journal) BeginRun(ctx context.Context, r Run) error {
	if r.ID == "" {
		return errors.New("begin run: empty run id")
	}
	if r.Mode != "plan" && r.Mode != "apply" {
		return fmt.Errorf("begin run %q: mode %q is neither plan nor apply", r.ID, r.Mode)
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = j.now()
	}
	_, err := j.db.ExecContext(ctx, `
		INSERT INTO runs (id, started_at, mode, command, source, source_sha256, duo_host, version, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')`,
		r.ID, formatTime(r.StartedAt), r.Mode, r.Command, r.Source, r.SourceSHA256, r.DuoHost, r.Version)
	if err != nil {
		return fmt.Errorf("begin run %q: %w", r.ID, err)
	}
	return nil
}

// FinishRun records the end of a running run.
func (j *Journal) FinishRun(ctx context.Context, id string, fin RunFinish) error {
	switch fin.Status {
	case StatusOK, StatusPartial, StatusFailed, StatusGuard, StatusInterrupted:
	default:
		return fmt.Errorf("finish run %q: invalid status %q", id, fin.Status)
	}
	var counts, report any
	if fin.Counts != nil {
		b, err := json.Marshal(fin.Counts)
		if err != nil {
			return fmt.Errorf("finish run %q: counts: %w", id, err)
		}
		counts = string(b)
	}
	if fin.Report != nil {
		if !json.Valid(fin.Report) {
			return fmt.Errorf("finish run %q: the report is not valid JSON", id)
		}
		report = string(fin.Report)
	}
	if fin.FinishedAt.IsZero() {
		fin.FinishedAt = j.now()
	}
	ctx = context.WithoutCancel(ctx) // record the end even of an interrupted run
	res, err := j.db.ExecContext(ctx, `
		UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, counts = ?, forced = ?, report = ?
		WHERE id = ? AND status = 'running'`,
		formatTime(fin.FinishedAt), fin.Status, fin.ExitCode, counts, fin.Forced, report, id)
	if err != nil {
		return fmt.Errorf("finish run %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		st, err := j.runStatus(ctx, id)
		if err != nil {
			return fmt.Errorf("finish run %q: %w", id, err)
		}
		return fmt.Errorf("finish run %q: the run is not running (status %s)", id, st)
	}
	return nil
}

// runStatus returns a run's status, or an error wrapping ErrNotFound.
func (j *Journal) runStatus(ctx context.Context, id string) (string, error) {
	var st string
	err := j.db.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	return st, err
}

// MarkCrashed marks every run still "running" as crashed and returns how
// many there were. Call it only while holding the state directory's lock:
// then no other run can be alive. Their unfinished actions keep a NULL
// result, which means "maybe done" (Enrollments counts such emails as sent).
func (j *Journal) MarkCrashed(ctx context.Context) (int, error) {
	res, err := j.db.ExecContext(ctx, `UPDATE runs SET status = 'crashed' WHERE status = 'running'`)
	if err != nil {
		return 0, fmt.Errorf("mark crashed runs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark crashed runs: %w", err)
	}
	return int(n), nil
}

// SetEmailResult records the emailing of a run's report: errMsg empty means
// it was sent at sentAt, otherwise it failed then with that error. The
// caller must make sure errMsg holds no secret (an SMTP error quoting a
// password, say).
func (j *Journal) SetEmailResult(ctx context.Context, runID string, sentAt time.Time, errMsg string) error {
	status := "sent"
	if errMsg != "" {
		status = "failed"
	}
	if sentAt.IsZero() {
		sentAt = j.now()
	}
	res, err := j.db.ExecContext(context.WithoutCancel(ctx), `UPDATE runs SET email_status = ?, email_at = ?, email_error = ? WHERE id = ?`,
		status, formatTime(sentAt), nullString(errMsg), runID)
	if err != nil {
		return fmt.Errorf("record email of run %q: %w", runID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record email of run %q: %w", runID, ErrNotFound)
	}
	return nil
}

// Report returns the report JSON stored with a run.
func (j *Journal) Report(ctx context.Context, runID string) ([]byte, error) {
	var report sql.NullString
	err := j.db.QueryRowContext(ctx, `SELECT report FROM runs WHERE id = ?`, runID).Scan(&report)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("report of run %q: %w", runID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("report of run %q: %w", runID, err)
	}
	if !report.Valid {
		return nil, fmt.Errorf("report of run %q: the run stored no report: %w", runID, ErrNotFound)
	}
	return []byte(report.String), nil
}

const summaryColumns = `
	r.id, r.mode, r.command, r.source, r.source_sha256, r.duo_host, r.version,
	r.started_at, r.finished_at, r.status, r.exit_code, r.counts, r.forced,
	r.report IS NOT NULL, r.email_status, r.email_at, r.email_error,
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id),
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id AND a.result = 'ok'),
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id AND a.result = 'failed'),
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id AND a.result = 'unknown'),
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id AND a.result = 'not_started'),
	(SELECT count(*) FROM actions a WHERE a.run_id = r.id AND a.result IS NULL)`

// Runs returns the latest runs, newest first; limit <= 0 means all.
func (j *Journal) Runs(ctx context.Context, limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := j.db.QueryContext(ctx, `SELECT `+summaryColumns+`
		FROM runs r ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []RunSummary
	for rows.Next() {
		s, err := scanSummary(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// Run returns one run, or an error wrapping ErrNotFound.
func (j *Journal) Run(ctx context.Context, id string) (RunSummary, error) {
	row := j.db.QueryRowContext(ctx, `SELECT `+summaryColumns+` FROM runs r WHERE r.id = ?`, id)
	s, err := scanSummary(row)
	if errors.Is(err, sql.ErrNoRows) {
		return RunSummary{}, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return RunSummary{}, fmt.Errorf("run %q: %w", id, err)
	}
	return s, nil
}

// LastRun returns the newest run of a mode ("plan", "apply"; "" for any),
// or an error wrapping ErrNotFound when there is none.
func (j *Journal) LastRun(ctx context.Context, mode string) (RunSummary, error) {
	row := j.db.QueryRowContext(ctx, `SELECT `+summaryColumns+` FROM runs r
		WHERE ? = '' OR r.mode = ? ORDER BY r.started_at DESC, r.rowid DESC LIMIT 1`, mode, mode)
	s, err := scanSummary(row)
	if errors.Is(err, sql.ErrNoRows) {
		return RunSummary{}, fmt.Errorf("last %s run: %w", modeName(mode), ErrNotFound)
	}
	if err != nil {
		return RunSummary{}, fmt.Errorf("last %s run: %w", modeName(mode), err)
	}
	return s, nil
}

func modeName(mode string) string {
	if mode == "" {
		return "any"
	}
	return mode
}

type scanner interface{ Scan(dest ...any) error }

func scanSummary(row scanner) (RunSummary, error) {
	var (
		s                           RunSummary
		started, finished, emailAt  sql.NullString
		exitCode                    sql.NullInt64
		counts, emailStatus, emailE sql.NullString
	)
	err := row.Scan(&s.ID, &s.Mode, &s.Command, &s.Source, &s.SourceSHA256, &s.DuoHost, &s.Version,
		&started, &finished, &s.Status, &exitCode, &counts, &s.Forced,
		&s.HasReport, &emailStatus, &emailAt, &emailE,
		&s.Actions.Total, &s.Actions.OK, &s.Actions.Failed, &s.Actions.Unknown, &s.Actions.NotStarted, &s.Actions.Unfinished)
	if err != nil {
		return RunSummary{}, err
	}
	if s.StartedAt, err = parseTime(started); err != nil {
		return RunSummary{}, err
	}
	if s.FinishedAt, err = parseTime(finished); err != nil {
		return RunSummary{}, err
	}
	if s.EmailAt, err = parseTime(emailAt); err != nil {
		return RunSummary{}, err
	}
	if exitCode.Valid {
		c := int(exitCode.Int64)
		s.ExitCode = &c
	}
	if counts.Valid {
		if err := json.Unmarshal([]byte(counts.String), &s.Counts); err != nil {
			return RunSummary{}, fmt.Errorf("run %q: malformed counts %q: %w", s.ID, counts.String, err)
		}
	}
	s.EmailStatus, s.EmailError = emailStatus.String, emailE.String
	return s, nil
}
