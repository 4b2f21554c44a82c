package journal

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// WriteBack is one attempt to write a note back to a ServiceNow request.
type WriteBack struct {
	SysID      string // the RITM's sys_id
	Number     string // its number, for people
	OutcomeKey string // identifies the note's content: the same key means the same note
	Note       string
	RunID      string    // the run that attempted it ("" if none)
	At         time.Time // zero: now
	Result     string    // "ok" or "failed"
	Error      string
}

// WriteBackDone reports whether this exact note (sys_id and outcome key) was
// already written successfully, by any run.
func (j *Journal) WriteBackDone(ctx context.Context, sysID, outcomeKey string) (bool, error) {
	var one int
	err := j.db.QueryRowContext(ctx, `
		SELECT 1 FROM write_backs WHERE sys_id = ? AND outcome_key = ? AND result = 'ok' LIMIT 1`,
		sysID, outcomeKey).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write-back state of %s: %w", sysID, err)
	}
	return true, nil
}

// RecordWriteBack records one write-back attempt. Attempts accumulate, so
// the table is the history of every note written or tried.
func (j *Journal) RecordWriteBack(ctx context.Context, wb WriteBack) error {
	if wb.SysID == "" || wb.OutcomeKey == "" {
		return fmt.Errorf("record write-back for %q: sys_id and outcome key are required", wb.Number)
	}
	if wb.Result != ResultOK && wb.Result != ResultFailed {
		return fmt.Errorf("record write-back for %s: invalid result %q (ok or failed)", wb.SysID, wb.Result)
	}
	if wb.At.IsZero() {
		wb.At = j.now()
	}
	_, err := j.db.ExecContext(context.WithoutCancel(ctx), `
		INSERT INTO write_backs (sys_id, number, outcome_key, note, run_id, at, result, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		wb.SysID, wb.Number, wb.OutcomeKey, wb.Note, nullString(wb.RunID), formatTime(wb.At), wb.Result, wb.Error)
	if err != nil {
		return fmt.Errorf("record write-back for %s: %w", wb.SysID, err)
	}
	return nil
}

// PendingWriteBacks returns the write-backs to retry: for each (sys_id,
// outcome key) never written successfully, its latest failed attempt,
// oldest first.
func (j *Journal) PendingWriteBacks(ctx context.Context) ([]WriteBack, error) {
	rows, err := j.db.QueryContext(ctx, `
		SELECT w.sys_id, w.number, w.outcome_key, w.note, w.run_id, w.at, w.result, w.error
		FROM write_backs w
		WHERE w.result = 'failed'
		  AND w.id = (SELECT max(id) FROM write_backs l WHERE l.sys_id = w.sys_id AND l.outcome_key = w.outcome_key)
		  AND NOT EXISTS (SELECT 1 FROM write_backs o
		                  WHERE o.sys_id = w.sys_id AND o.outcome_key = w.outcome_key AND o.result = 'ok')
		ORDER BY w.id`)
	if err != nil {
		return nil, fmt.Errorf("pending write-backs: %w", err)
	}
	defer rows.Close()
	var out []WriteBack
	for rows.Next() {
		var (
			wb    WriteBack
			runID sql.NullString
			at    sql.NullString
		)
		if err := rows.Scan(&wb.SysID, &wb.Number, &wb.OutcomeKey, &wb.Note, &runID, &at, &wb.Result, &wb.Error); err != nil {
			return nil, fmt.Errorf("pending write-backs: %w", err)
		}
		wb.RunID = runID.String
		if wb.At, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, wb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending write-backs: %w", err)
	}
	return out, nil
}

// Watermark returns the value stored under key, "" if none.
func (j *Journal) Watermark(ctx context.Context, key string) (string, error) {
	var v string
	err := j.db.QueryRowContext(ctx, `SELECT value FROM watermarks WHERE key = ?`, key).Scan(&v)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read watermark %q: %w", key, err)
	}
	return v, nil
}

// SetWatermark stores value under key, replacing the previous one.
func (j *Journal) SetWatermark(ctx context.Context, key, value, runID string) error {
	if key == "" {
		return fmt.Errorf("set watermark: empty key")
	}
	_, err := j.db.ExecContext(ctx, `
		INSERT INTO watermarks (key, value, run_id, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, at = excluded.at`,
		key, value, nullString(runID), formatTime(j.now()))
	if err != nil {
		return fmt.Errorf("set watermark %q: %w", key, err)
	}
	return nil
}
