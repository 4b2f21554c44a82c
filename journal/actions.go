package journal

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	dsync "github.com/duosync/duosync/sync"
)

// Action results.
const (
	ResultOK         = "ok"
	ResultFailed     = "failed"
	ResultUnknown    = "unknown"     // sent, no answer, could not be verified: maybe done
	ResultNotStarted = "not_started" // journaled, then never dispatched (interrupted)
)

// KindEnroll is the action kind that sends an enrollment email.
const KindEnroll = "enroll"

// Action is one journaled action, as stored.
type Action struct {
	ID         int64
	RunID      string
	Kind       string
	Username   string
	Group      string
	Requests   []string
	StartedAt  time.Time
	FinishedAt time.Time // zero while unfinished
	Result     string    // "" while unfinished (maybe done)
	Detail     string
}

// prepare prepares the statements of ActionStarted and ActionFinished.
func (j *Journal) prepare(ctx context.Context) error {
	var err error
	// INSERT ... SELECT inserts nothing unless the run exists and is running.
	j.startAction, err = j.db.PrepareContext(ctx, `
		INSERT INTO actions (run_id, kind, username, username_key, grp, requests, started_at)
		SELECT id, ?, ?, ?, ?, ?, ? FROM runs WHERE id = ? AND status = 'running'`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	j.finishAction, err = j.db.PrepareContext(ctx, `
		UPDATE actions SET result = ?, detail = ?, finished_at = ? WHERE id = ? AND result IS NULL`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// ActionStarted records an action's intent before its call is made and
// returns its id. The run must be running.
func (j *Journal) ActionStarted(ctx context.Context, runID string, a dsync.JournalAction) (int64, error) {
	if a.Kind == "" {
		return 0, fmt.Errorf("journal action for %q in run %q: empty kind", a.Username, runID)
	}
	for _, r := range a.Requests {
		if strings.Contains(r, ",") {
			return 0, fmt.Errorf("journal %s %q in run %q: request number %q contains a comma", a.Kind, a.Username, runID, r)
		}
	}
	res, err := j.startAction.ExecContext(ctx,
		a.Kind, a.Username, usernameKey(a.Username), a.Group, strings.Join(a.Requests, ","), formatTime(j.now()), runID)
	if err != nil {
		return 0, fmt.Errorf("journal %s %q in run %q: %w", a.Kind, a.Username, runID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		st, err := j.runStatus(ctx, runID)
		if err != nil {
			return 0, fmt.Errorf("journal %s %q: %w", a.Kind, a.Username, err)
		}
		return 0, fmt.Errorf("journal %s %q: run %q is not running (status %s)", a.Kind, a.Username, runID, st)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("journal %s %q in run %q: %w", a.Kind, a.Username, runID, err)
	}
	return id, nil
}

// ActionFinished records the result of a started action: "ok", "failed",
// "unknown" or "not_started". An action is finished once. A cancelled ctx
// does not prevent the write.
func (j *Journal) ActionFinished(ctx context.Context, id int64, result, detail string) error {
	switch result {
	case ResultOK, ResultFailed, ResultUnknown, ResultNotStarted:
	default:
		return fmt.Errorf("finish action %d: invalid result %q", id, result)
	}
	// The call was made: record its outcome even if the run is being interrupted.
	ctx = context.WithoutCancel(ctx)
	res, err := j.finishAction.ExecContext(ctx,
		result, detail, formatTime(j.now()), id)
	if err != nil {
		return fmt.Errorf("finish action %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var prev sql.NullString
		err := j.db.QueryRowContext(ctx, `SELECT result FROM actions WHERE id = ?`, id).Scan(&prev)
		if err == sql.ErrNoRows {
			return fmt.Errorf("finish action %d: no such action: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("finish action %d: %w", id, err)
		}
		return fmt.Errorf("finish action %d: already finished (%s)", id, prev.String)
	}
	return nil
}

// Actions returns a run's actions in the order they were started.
func (j *Journal) Actions(ctx context.Context, runID string) ([]Action, error) {
	rows, err := j.db.QueryContext(ctx, `
		SELECT id, run_id, kind, username, grp, requests, started_at, finished_at, result, detail
		FROM actions WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("actions of run %q: %w", runID, err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var (
			a                 Action
			requests          string
			started, finished sql.NullString
			result            sql.NullString
		)
		if err := rows.Scan(&a.ID, &a.RunID, &a.Kind, &a.Username, &a.Group, &requests, &started, &finished, &result, &a.Detail); err != nil {
			return nil, fmt.Errorf("actions of run %q: %w", runID, err)
		}
		if requests != "" {
			a.Requests = strings.Split(requests, ",")
		}
		if a.StartedAt, err = parseTime(started); err != nil {
			return nil, err
		}
		if a.FinishedAt, err = parseTime(finished); err != nil {
			return nil, err
		}
		a.Result = result.String
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actions of run %q: %w", runID, err)
	}
	return out, nil
}

// enrollmentChunk bounds the IN list of one query, well under SQLite's
// limit on bound parameters.
const enrollmentChunk = 500

// Enrollments returns, for each of the given usernames that has any, the
// enrollment emails Duo may have sent it: enroll actions that succeeded,
// whose outcome is unknown, or that were started and never finished (the
// process died during the call, so the email was maybe sent). Failed and
// not-started ones do not count. Last is the latest such action's start.
// Usernames match trimmed and case-insensitively; the map is keyed by the
// usernames as given.
func (j *Journal) Enrollments(ctx context.Context, usernames []string) (map[string]dsync.EnrollmentHistory, error) {
	out := make(map[string]dsync.EnrollmentHistory)
	byKey := make(map[string][]string, len(usernames)) // key -> usernames as given
	var keys []string
	for _, u := range usernames {
		k := usernameKey(u)
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], u)
	}
	for start := 0; start < len(keys); start += enrollmentChunk {
		chunk := keys[start:min(start+enrollmentChunk, len(keys))]
		args := make([]any, len(chunk))
		for i, k := range chunk {
			args[i] = k
		}
		rows, err := j.db.QueryContext(ctx, `
			SELECT username_key, count(*), max(started_at) FROM actions
			WHERE kind = 'enroll' AND (result IS NULL OR result IN ('ok', 'unknown'))
			  AND username_key IN (?`+strings.Repeat(",?", len(chunk)-1)+`)
			GROUP BY username_key`, args...)
		if err != nil {
			return nil, fmt.Errorf("read enrollment history: %w", err)
		}
		for rows.Next() {
			var (
				k    string
				h    dsync.EnrollmentHistory
				last sql.NullString
			)
			if err := rows.Scan(&k, &h.Count, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read enrollment history: %w", err)
			}
			if h.Last, err = parseTime(last); err != nil {
				rows.Close()
				return nil, err
			}
			for _, u := range byKey[k] {
				out[u] = h
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read enrollment history: %w", err)
		}
	}
	return out, nil
}
