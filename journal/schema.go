package journal

// migrations are the schema steps, in order. Step i (0-based) takes the
// database from PRAGMA user_version i to i+1; each is applied in its own
// transaction together with the version bump. Never edit a released step:
// append a new one.
//
// The tables are meant to be read by an administrator with sqlite3: plain
// columns, timestamps as ISO-8601 UTC text (fixed width, so they sort), JSON
// only where the shape is open (counts, report).
var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE runs (
	id            TEXT PRIMARY KEY,
	started_at    TEXT NOT NULL,
	finished_at   TEXT,
	mode          TEXT NOT NULL CHECK (mode IN ('plan', 'apply')),
	command       TEXT NOT NULL DEFAULT '',
	source        TEXT NOT NULL DEFAULT '',
	source_sha256 TEXT NOT NULL DEFAULT '',
	duo_host      TEXT NOT NULL DEFAULT '',
	version       TEXT NOT NULL DEFAULT '',
	status        TEXT NOT NULL DEFAULT 'running'
	              CHECK (status IN ('running', 'ok', 'partial', 'failed', 'guard', 'interrupted', 'crashed')),
	exit_code     INTEGER,
	counts        TEXT,  -- JSON object: {"created": 3, ...}
	forced        INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1)),
	report        TEXT,  -- the report's JSON
	email_status  TEXT CHECK (email_status IN ('sent', 'failed')),
	email_at      TEXT,
	email_error   TEXT
);
CREATE INDEX runs_by_start ON runs (started_at);

CREATE TABLE actions (
	id            INTEGER PRIMARY KEY,
	run_id        TEXT NOT NULL REFERENCES runs (id),
	kind          TEXT NOT NULL,
	username      TEXT NOT NULL,
	username_key  TEXT NOT NULL,  -- username trimmed and lower-cased, for matching
	grp           TEXT NOT NULL DEFAULT '',
	requests      TEXT NOT NULL DEFAULT '',  -- RITM numbers, comma-separated
	started_at    TEXT NOT NULL,
	finished_at   TEXT,
	-- NULL: started and not (yet) finished, so maybe done.
	result        TEXT CHECK (result IN ('ok', 'failed', 'unknown', 'not_started')),
	detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX actions_by_run ON actions (run_id);
CREATE INDEX actions_by_user ON actions (kind, username_key);

-- Every enrollment email Duo may have sent: answered OK (confirmed = 1), or
-- sent without a conclusive answer (confirmed = 0). Failed sends are not
-- here. A view over actions, so it can never disagree with them.
CREATE VIEW enrollments AS
	SELECT username, run_id, id AS action_id, started_at AS sent_at,
	       (result IS 'ok') AS confirmed
	FROM actions
	WHERE kind = 'enroll' AND (result IS NULL OR result IN ('ok', 'unknown'));

CREATE TABLE write_backs (
	id            INTEGER PRIMARY KEY,
	sys_id        TEXT NOT NULL,
	number        TEXT NOT NULL DEFAULT '',
	outcome_key   TEXT NOT NULL,  -- identifies the note's content: same key, same note
	note          TEXT NOT NULL DEFAULT '',
	run_id        TEXT REFERENCES runs (id),
	at            TEXT NOT NULL,
	result        TEXT NOT NULL CHECK (result IN ('ok', 'failed')),
	error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX write_backs_by_key ON write_backs (sys_id, outcome_key);

CREATE TABLE watermarks (
	key           TEXT PRIMARY KEY,
	value         TEXT NOT NULL,
	run_id        TEXT REFERENCES runs (id),
	at            TEXT NOT NULL
);
`,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)
