// Package journal is duosync's memory across runs, in one SQLite file
// (DIR/journal.db) through the pure-Go modernc.org/sqlite driver: the runs,
// every action written to Duo (its intent before the call, its result
// after), the enrollment emails sent, the ServiceNow write-backs and the
// source watermark.
//
// Durability: the database is in WAL mode with synchronous=NORMAL. Every
// call commits before it returns, and a committed transaction is in the WAL
// file (in the kernel's page cache) at that point, so it survives the
// process being killed at any moment, SIGKILL included. Only a crash of the
// operating system itself or a power loss may lose the last transactions;
// that is the trade for not calling fsync on every action.
//
// Concurrency: one *Journal is safe for use by many goroutines (the apply
// pool); it uses a single connection, so calls are serialised. Several
// processes may open the same file (the schedule daemon and `duosync
// history`): WAL lets readers proceed while one writes, and a writer waits
// up to busyTimeout for another.
//
// Outcomes are recorded even when the caller's context is cancelled
// (FinishRun, ActionFinished, SetEmailResult, RecordWriteBack): an
// interrupted run must still journal what its in-flight calls did. They are
// local writes, bounded by the busy timeout.
//
// No API takes a secret, so the journal never holds one.
//
// An administrator can read it with sqlite3 while duosync runs, e.g.:
//
//	sqlite3 journal.db "SELECT id, started_at, mode, status, exit_code FROM runs ORDER BY started_at DESC LIMIT 10"
//	sqlite3 journal.db "SELECT started_at, kind, username, grp, result, detail FROM actions WHERE run_id = 'RUN'"
//	sqlite3 journal.db "SELECT * FROM enrollments WHERE username = 'jdoe@example.com'"
//
// In actions, a NULL result means the call was started and its outcome
// never recorded (the process died): it may have been done.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the journal's file name in the state directory.
const FileName = "journal.db"

// busyTimeout is how long a write waits for another process's write.
const busyTimeout = 10 * time.Second

// ErrSchemaTooNew is wrapped by Open when the file was written by a newer duosync.
var ErrSchemaTooNew = errors.New("journal schema is newer than this duosync")

// ErrNotFound is wrapped when a run (or its report) does not exist.
var ErrNotFound = errors.New("not found")

// timeLayout is ISO-8601 UTC with a fixed width, so text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Journal is an open journal file.
type Journal struct {
	db   *sql.DB
	path string
	now  func() time.Time // the clock, replaceable in tests

	// The apply pool's hot path, prepared once: parsing SQL costs as much
	// as executing these statements.
	startAction, finishAction *sql.Stmt
}

// Open opens the journal at path, creating it (mode 0600) and applying the
// schema migrations as needed. A file written by a newer duosync is refused.
func Open(path string) (*Journal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open journal %q: %w", path, err)
	}
	// The driver reads everything after a '?' as connection options.
	if strings.ContainsRune(abs, '?') {
		return nil, fmt.Errorf("open journal %q: the path must not contain '?'", abs)
	}
	// SQLite would create the file 0644; create it first so it is 0600. The
	// -wal and -shm files take the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f.Close()

	// _txlock=immediate: a transaction takes the write lock when it begins,
	// so two processes never deadlock upgrading a read to a write.
	dsn := abs + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)" +
		// A checkpoint (WAL to database) is the only step that calls fsync;
		// every 4096 pages (16 MiB of WAL) instead of SQLite's 1000 roughly
		// halves the cost of journaling a large apply.
		"&_pragma=wal_autocheckpoint(4096)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open journal %q: %w", abs, err)
	}
	// One connection: SQLite has one writer at a time anyway, and the pool's
	// goroutines then queue in database/sql instead of failing with SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	j := &Journal{db: db, path: abs, now: time.Now}
	if err := j.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %q: %w", abs, err)
	}
	if err := j.prepare(context.Background()); err != nil {
		j.Close()
		return nil, fmt.Errorf("open journal %q: %w", abs, err)
	}
	return j, nil
}

// Path is the journal file's absolute path.
func (j *Journal) Path() string { return j.path }

// Close closes the journal.
func (j *Journal) Close() error {
	for _, st := range []*sql.Stmt{j.startAction, j.finishAction} {
		if st != nil {
			st.Close()
		}
	}
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("close journal %q: %w", j.path, err)
	}
	return nil
}

// migrate brings the schema to SchemaVersion, one transaction per step. The
// version is re-read inside each transaction, so two processes opening a new
// file at once apply each step exactly once.
func (j *Journal) migrate(ctx context.Context) error {
	for {
		done, err := j.migrateStep(ctx)
		if err != nil || done {
			return err
		}
	}
}

func (j *Journal) migrateStep(ctx context.Context) (done bool, err error) {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()

	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version > SchemaVersion:
		return false, fmt.Errorf("%w: the file is at schema version %d, this duosync knows up to %d; upgrade duosync", ErrSchemaTooNew, version, SchemaVersion)
	case version == SchemaVersion:
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[version]); err != nil {
		return false, fmt.Errorf("migrate schema to version %d: %w", version+1, err)
	}
	// PRAGMA takes no parameters; version+1 is an int we computed.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		return false, fmt.Errorf("set schema version %d: %w", version+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit schema version %d: %w", version+1, err)
	}
	return false, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullString is the SQL value of an optional reference: NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("journal holds a malformed time %q: %w", s.String, err)
	}
	return t, nil
}

// usernameKey is how usernames are matched: trimmed and lower-cased, as the
// engine normalises them.
func usernameKey(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
