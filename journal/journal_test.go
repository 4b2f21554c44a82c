package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	dsync "github.com/duosync/duosync/sync"
)

// The engine's interface is satisfied exactly.
var _ dsync.Journal = (*Journal)(nil)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock that advances one second per reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func openTest(t *testing.T) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	j.now = (&clock{t: t0}).now
	return j, path
}

func beginTest(t *testing.T, j *Journal, id, mode string, started time.Time) {
	t.Helper()
	if err := j.BeginRun(context.Background(), Run{ID: id, Mode: mode, Command: mode, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
}

// rawDB opens the file with no migration, as sqlite3 would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenCreatesSchemaAndFileMode(t *testing.T) {
	j, path := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0) // makes SQLite write the -wal file

	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(name), st.Mode().Perm())
		}
	}

	db := rawDB(t, path)
	var version int
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if version != SchemaVersion || mode != "wal" {
		t.Fatalf("user_version %d journal_mode %s, want %d wal", version, mode, SchemaVersion)
	}
	for _, table := range []string{"runs", "actions", "enrollments", "write_backs", "watermarks"} {
		if _, err := db.ExecContext(ctx, "SELECT count(*) FROM "+table); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	j, path := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		j2, err := Open(path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		runs, err := j2.Runs(ctx, 0)
		if err != nil || len(runs) != 1 || runs[0].ID != "r1" {
			t.Fatalf("reopen %d: runs %+v, %v", i, runs, err)
		}
		j2.Close()
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	j, path := openTest(t)
	j.Close()
	if _, err := rawDB(t, path).Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+3)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{path, fmt.Sprint(SchemaVersion + 3), "upgrade duosync"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestOpenBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{garbage, garbage},
		{filepath.Join(dir, "no", "such", "dir", FileName), "no such file"},
		{filepath.Join(dir, "what?.db"), "'?'"},
	} {
		j, err := Open(tc.path)
		if err == nil {
			j.Close()
			t.Errorf("Open(%q) succeeded", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want it to mention %q", tc.path, err, tc.want)
		}
	}
}

func TestRunLifecycle(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	run := Run{ID: "20250601T120000Z-ab12", Mode: "apply", Command: "apply", Source: "exports/a.csv",
		SourceSHA256: "e3b0c442", DuoHost: "api-x.duosecurity.com", Version: "1.2.3", StartedAt: t0}
	if err := j.BeginRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := j.BeginRun(ctx, run); err == nil {
		t.Fatal("BeginRun twice with one id succeeded")
	}
	id, err := j.ActionStarted(ctx, run.ID, dsync.JournalAction{Kind: "create_user", Username: "a@x.com", Requests: []string{"RITM1", "RITM2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.ActionFinished(ctx, id, ResultOK, "DU123"); err != nil {
		t.Fatal(err)
	}
	if err := j.ActionFinished(ctx, id, ResultFailed, "again"); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("second ActionFinished: %v", err)
	}
	if err := j.ActionFinished(ctx, 9999, ResultOK, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ActionFinished of unknown id: %v", err)
	}
	if err := j.ActionFinished(ctx, id, "done", ""); err == nil || !strings.Contains(err.Error(), `"done"`) {
		t.Fatalf("invalid result: %v", err)
	}

	s, err := j.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusRunning || s.ExitCode != nil || !s.FinishedAt.IsZero() || s.Run != run {
		t.Fatalf("running summary %+v", s)
	}

	report := json.RawMessage(`{"schema":1,"rows":[]}`)
	fin := RunFinish{Status: StatusPartial, ExitCode: 3, Counts: map[string]int{"created": 1, "failed": 2}, Forced: true, Report: report, FinishedAt: t0.Add(time.Minute)}
	if err := j.FinishRun(ctx, run.ID, fin); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishRun(ctx, run.ID, fin); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("second FinishRun: %v", err)
	}
	if _, err := j.ActionStarted(ctx, run.ID, dsync.JournalAction{Kind: "enroll", Username: "a@x.com"}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("ActionStarted after finish: %v", err)
	}
	if err := j.SetEmailResult(ctx, run.ID, t0.Add(2*time.Minute), "smtp: 554 rejected"); err != nil {
		t.Fatal(err)
	}

	s, err = j.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := RunSummary{
		Run: run, FinishedAt: t0.Add(time.Minute), Status: StatusPartial, ExitCode: s.ExitCode,
		Counts: fin.Counts, Forced: true, HasReport: true,
		EmailStatus: "failed", EmailAt: t0.Add(2 * time.Minute), EmailError: "smtp: 554 rejected",
		Actions: ActionCounts{Total: 1, OK: 1},
	}
	if s.ExitCode == nil || *s.ExitCode != 3 || !reflect.DeepEqual(s, want) {
		t.Fatalf("finished summary\n got %+v\nwant %+v", s, want)
	}
	got, err := j.Report(ctx, run.ID)
	if err != nil || string(got) != string(report) {
		t.Fatalf("Report = %s, %v", got, err)
	}

	acts, err := j.Actions(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantAct := Action{ID: id, RunID: run.ID, Kind: "create_user", Username: "a@x.com", Requests: []string{"RITM1", "RITM2"},
		StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second), Result: ResultOK, Detail: "DU123"}
	if len(acts) != 1 || !reflect.DeepEqual(acts[0], wantAct) {
		t.Fatalf("actions\n got %+v\nwant %+v", acts, wantAct)
	}
}

func TestRunErrors(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	if err := j.BeginRun(ctx, Run{ID: "x", Mode: "destroy"}); err == nil || !strings.Contains(err.Error(), `"destroy"`) {
		t.Fatalf("bad mode: %v", err)
	}
	if err := j.BeginRun(ctx, Run{Mode: "plan"}); err == nil {
		t.Fatal("empty id accepted")
	}
	beginTest(t, j, "r", "plan", t0)
	if err := j.FinishRun(ctx, "r", RunFinish{Status: "running"}); err == nil {
		t.Fatal("FinishRun with status running accepted")
	}
	if err := j.FinishRun(ctx, "r", RunFinish{Status: StatusOK, Report: []byte("{broken")}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("broken report: %v", err)
	}
	if err := j.FinishRun(ctx, "nope", RunFinish{Status: StatusOK}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FinishRun of unknown run: %v", err)
	}
	if _, err := j.ActionStarted(ctx, "nope", dsync.JournalAction{Kind: "enroll", Username: "u"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ActionStarted in unknown run: %v", err)
	}
	if _, err := j.ActionStarted(ctx, "r", dsync.JournalAction{Username: "u"}); err == nil {
		t.Fatal("ActionStarted with empty kind accepted")
	}
	if _, err := j.ActionStarted(ctx, "r", dsync.JournalAction{Kind: "enroll", Username: "u", Requests: []string{"A,B"}}); err == nil {
		t.Fatal("request number with a comma accepted")
	}
	if _, err := j.Run(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Run of unknown id: %v", err)
	}
	if _, err := j.Report(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Report of unknown run: %v", err)
	}
	if err := j.FinishRun(ctx, "r", RunFinish{Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Report(ctx, "r"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no report") {
		t.Fatalf("Report of a run without one: %v", err)
	}
	if err := j.SetEmailResult(ctx, "nope", t0, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetEmailResult of unknown run: %v", err)
	}
}

func TestMarkCrashed(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "done", "apply", t0)
	if err := j.FinishRun(ctx, "done", RunFinish{Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	beginTest(t, j, "died", "apply", t0.Add(time.Hour))
	finished, _ := j.ActionStarted(ctx, "died", dsync.JournalAction{Kind: "create_user", Username: "u@x"})
	if err := j.ActionFinished(ctx, finished, ResultOK, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := j.ActionStarted(ctx, "died", dsync.JournalAction{Kind: "enroll", Username: "u@x"}); err != nil {
		t.Fatal(err)
	}

	n, err := j.MarkCrashed(ctx)
	if err != nil || n != 1 {
		t.Fatalf("MarkCrashed = %d, %v; want 1", n, err)
	}
	if n, _ := j.MarkCrashed(ctx); n != 0 {
		t.Fatalf("second MarkCrashed = %d, want 0", n)
	}
	s, err := j.Run(ctx, "died")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusCrashed || s.Actions != (ActionCounts{Total: 2, OK: 1, Unfinished: 1}) {
		t.Fatalf("crashed run: %+v", s)
	}
	if s, _ := j.Run(ctx, "done"); s.Status != StatusOK {
		t.Fatalf("finished run touched: %s", s.Status)
	}
	// The enroll that never finished was maybe sent: it counts.
	h, err := j.Enrollments(ctx, []string{"u@x"})
	if err != nil {
		t.Fatal(err)
	}
	if h["u@x"].Count != 1 {
		t.Fatalf("enrollments after crash: %+v", h)
	}
	if err := j.FinishRun(ctx, "died", RunFinish{Status: StatusOK}); err == nil {
		t.Fatal("a crashed run was finished")
	}
}

func TestEnrollmentCountingRules(t *testing.T) {
	j, path := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0)
	// The clock advances one second per reading: action n starts at t0+n*2s-ish;
	// record each start to know the expected Last.
	type step struct {
		kind, user, result string // result "" = never finished
	}
	steps := []step{
		{"enroll", "ok@x", ResultOK},
		{"enroll", "OK@x ", ResultOK}, // same user, other spelling
		{"enroll", "failed@x", ResultFailed},
		{"enroll", "unknown@x", ResultUnknown},
		{"enroll", "open@x", ""},
		{"enroll", "notstarted@x", ResultNotStarted},
		{"create_user", "create@x", ResultOK},
		{"add_membership", "ok@x", ResultOK},
		{"enroll", "mixed@x", ResultFailed},
		{"enroll", "mixed@x", ResultOK},
	}
	last := map[string]time.Time{}
	for _, s := range steps {
		id, err := j.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: s.kind, Username: s.user})
		if err != nil {
			t.Fatal(err)
		}
		acts, _ := j.Actions(ctx, "r1")
		if s.kind == "enroll" && s.result != ResultFailed && s.result != ResultNotStarted {
			last[usernameKey(s.user)] = acts[len(acts)-1].StartedAt
		}
		if s.result != "" {
			if err := j.ActionFinished(ctx, id, s.result, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	asked := []string{"OK@X", "failed@x", "unknown@x", "open@x", "notstarted@x", "create@x", "mixed@x", "never@x"}
	got, err := j.Enrollments(ctx, asked)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]dsync.EnrollmentHistory{
		"OK@X":      {Count: 2, Last: last["ok@x"]},
		"unknown@x": {Count: 1, Last: last["unknown@x"]},
		"open@x":    {Count: 1, Last: last["open@x"]},
		"mixed@x":   {Count: 1, Last: last["mixed@x"]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Enrollments\n got %+v\nwant %+v", got, want)
	}

	// The enrollments view agrees, for an admin with sqlite3.
	var n, confirmed int
	if err := rawDB(t, path).QueryRow(`SELECT count(*), sum(confirmed) FROM enrollments`).Scan(&n, &confirmed); err != nil {
		t.Fatal(err)
	}
	if n != 5 || confirmed != 3 {
		t.Fatalf("enrollments view: %d rows, %d confirmed; want 5, 3", n, confirmed)
	}
}

func TestEnrollmentsManyUsernames(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0)
	var users []string
	for i := 0; i < 3*enrollmentChunk+7; i++ {
		users = append(users, fmt.Sprintf("user%04d@x", i))
	}
	// Every 50th user has one confirmed email, in every chunk.
	for i := 0; i < len(users); i += 50 {
		id, err := j.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: users[i]})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.ActionFinished(ctx, id, ResultOK, ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := j.Enrollments(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if want := (len(users) + 49) / 50; len(got) != want {
		t.Fatalf("%d users with history, want %d", len(got), want)
	}
	for i, u := range users {
		if _, ok := got[u]; ok != (i%50 == 0) {
			t.Fatalf("user %s: in map %v", u, ok)
		}
	}
	if got, err := j.Enrollments(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("Enrollments(nil) = %v, %v", got, err)
	}
}

func TestWriteBackDedup(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0)
	done := func(sys, key string) bool {
		t.Helper()
		ok, err := j.WriteBackDone(ctx, sys, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	record := func(wb WriteBack) {
		t.Helper()
		if err := j.RecordWriteBack(ctx, wb); err != nil {
			t.Fatal(err)
		}
	}
	if done("s1", "k1") {
		t.Fatal("done before any write-back")
	}
	record(WriteBack{SysID: "s1", Number: "RITM1", OutcomeKey: "k1", Note: "Duo user created", RunID: "r1", Result: ResultFailed, Error: "HTTP 503"})
	record(WriteBack{SysID: "s2", Number: "RITM2", OutcomeKey: "k2", Note: "n2", RunID: "r1", Result: ResultFailed, Error: "HTTP 500"})
	record(WriteBack{SysID: "s2", Number: "RITM2", OutcomeKey: "k2", Note: "n2", RunID: "r1", Result: ResultFailed, Error: "timeout"})
	record(WriteBack{SysID: "s3", Number: "RITM3", OutcomeKey: "k3", Note: "n3", Result: ResultOK})
	if done("s1", "k1") || done("s2", "k2") || !done("s3", "k3") || done("s3", "other") {
		t.Fatal("WriteBackDone wrong after failures")
	}

	pending, err := j.PendingWriteBacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].SysID != "s1" || pending[1].SysID != "s2" || pending[1].Error != "timeout" ||
		pending[0].Note != "Duo user created" || pending[0].Number != "RITM1" || pending[0].RunID != "r1" || pending[0].At.IsZero() {
		t.Fatalf("pending %+v", pending)
	}

	record(WriteBack{SysID: "s1", Number: "RITM1", OutcomeKey: "k1", Note: "Duo user created", Result: ResultOK})
	if !done("s1", "k1") {
		t.Fatal("not done after an ok write-back")
	}
	pending, _ = j.PendingWriteBacks(ctx)
	if len(pending) != 1 || pending[0].SysID != "s2" {
		t.Fatalf("pending after retry %+v", pending)
	}

	for _, bad := range []WriteBack{{OutcomeKey: "k", Result: ResultOK}, {SysID: "s", Result: ResultOK}, {SysID: "s", OutcomeKey: "k", Result: "maybe"}} {
		if err := j.RecordWriteBack(ctx, bad); err == nil {
			t.Errorf("RecordWriteBack(%+v) accepted", bad)
		}
	}
	if err := j.RecordWriteBack(ctx, WriteBack{SysID: "s", OutcomeKey: "k", Result: ResultOK, RunID: "no-such-run"}); err == nil {
		t.Error("a write-back for an unknown run accepted (foreign keys off?)")
	}
}

func TestWatermark(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	if v, err := j.Watermark(ctx, "servicenow:sc_req_item"); err != nil || v != "" {
		t.Fatalf("unset watermark = %q, %v", v, err)
	}
	beginTest(t, j, "r1", "apply", t0)
	if err := j.SetWatermark(ctx, "servicenow:sc_req_item", "2025-06-01 10:00:00", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := j.SetWatermark(ctx, "servicenow:sc_req_item", "2025-06-01 11:00:00", ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := j.Watermark(ctx, "servicenow:sc_req_item"); v != "2025-06-01 11:00:00" {
		t.Fatalf("watermark = %q", v)
	}
	if v, _ := j.Watermark(ctx, "other"); v != "" {
		t.Fatalf("other key = %q", v)
	}
	if err := j.SetWatermark(ctx, "", "v", ""); err == nil {
		t.Fatal("empty key accepted")
	}
}

func TestHistoryOrdering(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "b", "apply", t0.Add(2*time.Hour))
	beginTest(t, j, "a", "plan", t0)
	beginTest(t, j, "c", "plan", t0.Add(3*time.Hour))
	beginTest(t, j, "d", "apply", t0.Add(3*time.Hour)) // same start as c: later insert first
	ids := func(rs []RunSummary) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	all, err := j.Runs(ctx, 0)
	if err != nil || ids(all) != "d,c,b,a" {
		t.Fatalf("Runs(0) = %s, %v", ids(all), err)
	}
	two, _ := j.Runs(ctx, 2)
	if ids(two) != "d,c" {
		t.Fatalf("Runs(2) = %s", ids(two))
	}
	for mode, want := range map[string]string{"": "d", "plan": "c", "apply": "d"} {
		r, err := j.LastRun(ctx, mode)
		if err != nil || r.ID != want {
			t.Errorf("LastRun(%q) = %s, %v; want %s", mode, r.ID, err, want)
		}
	}
	empty, _ := openTest(t)
	if _, err := empty.LastRun(ctx, "apply"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LastRun on an empty journal: %v", err)
	}
	if rs, err := empty.Runs(ctx, 10); err != nil || len(rs) != 0 {
		t.Fatalf("Runs on an empty journal: %v, %v", rs, err)
	}
}

// An administrator reading the file with sqlite3 sees exactly the values
// passed, with readable ISO-8601 UTC timestamps, and nothing else: the
// journal adds no data of its own beyond ids, times and the username key.
func TestStoredValuesAreWhatWasPassed(t *testing.T) {
	j, path := openTest(t)
	ctx := context.Background()
	local := time.FixedZone("EST", -5*3600)
	if err := j.BeginRun(ctx, Run{ID: "run-1", Mode: "apply", Command: "apply", Source: "a.csv", SourceSHA256: "abc",
		DuoHost: "api-1.duosecurity.com", Version: "v9", StartedAt: t0.In(local)}); err != nil {
		t.Fatal(err)
	}
	id, _ := j.ActionStarted(ctx, "run-1", dsync.JournalAction{Kind: "add_membership", Username: " Jane@X.com", Group: "MFA Users", Requests: []string{"RITM7"}})
	if err := j.ActionFinished(ctx, id, ResultFailed, "duo POST /admin/v1/users/DU1/groups: HTTP 400"); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishRun(ctx, "run-1", RunFinish{Status: StatusPartial, ExitCode: 3, Counts: map[string]int{"failed": 1}}); err != nil {
		t.Fatal(err)
	}

	db := rawDB(t, path)
	dump := func(query string) []string {
		t.Helper()
		rows, err := db.Query(query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var cells []string
			for i, v := range vals {
				cells = append(cells, fmt.Sprintf("%s=%v", cols[i], v))
			}
			out = append(out, strings.Join(cells, " | "))
		}
		return out
	}
	gotRuns := dump(`SELECT * FROM runs`)
	wantRuns := []string{"id=run-1 | started_at=2025-06-01T12:00:00.000000Z | finished_at=2025-06-01T12:00:03.000000Z | mode=apply | command=apply | source=a.csv | source_sha256=abc | duo_host=api-1.duosecurity.com | version=v9 | status=partial | exit_code=3 | counts={\"failed\":1} | forced=0 | report=<nil> | email_status=<nil> | email_at=<nil> | email_error=<nil>"}
	if !reflect.DeepEqual(gotRuns, wantRuns) {
		t.Errorf("runs\n got %q\nwant %q", gotRuns, wantRuns)
	}
	gotActs := dump(`SELECT * FROM actions`)
	wantActs := []string{fmt.Sprintf("id=%d | run_id=run-1 | kind=add_membership | username= Jane@X.com | username_key=jane@x.com | grp=MFA Users | requests=RITM7 | started_at=2025-06-01T12:00:01.000000Z | finished_at=2025-06-01T12:00:02.000000Z | result=failed | detail=duo POST /admin/v1/users/DU1/groups: HTTP 400", id)}
	if !reflect.DeepEqual(gotActs, wantActs) {
		t.Errorf("actions\n got %q\nwant %q", gotActs, wantActs)
	}
}

func TestConcurrentActions(t *testing.T) {
	j, _ := openTest(t)
	ctx := context.Background()
	beginTest(t, j, "r1", "apply", t0)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	ids := make(chan int64, workers*each)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id, err := j.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: fmt.Sprintf("u%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				if err := j.ActionFinished(ctx, id, ResultOK, ""); err != nil {
					errs <- err
					return
				}
				ids <- id
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %d returned twice", id)
		}
		seen[id] = true
	}
	s, err := j.Run(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != workers*each || s.Actions != (ActionCounts{Total: workers * each, OK: workers * each}) {
		t.Fatalf("%d ids, counts %+v", len(seen), s.Actions)
	}
}

// Two handles on one file, as the schedule daemon and `duosync history`.
func TestTwoHandles(t *testing.T) {
	writer, path := openTest(t)
	reader, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ctx := context.Background()
	beginTest(t, writer, "r1", "apply", t0)

	// A reader in the middle of a query does not block the writer (WAL).
	rows, err := reader.db.QueryContext(ctx, `SELECT id FROM runs`)
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("reader sees no run")
	}
	if _, err := writer.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: "u"}); err != nil {
		t.Fatalf("write while another handle reads: %v", err)
	}
	rows.Close()

	if runs, err := reader.Runs(ctx, 0); err != nil || len(runs) != 1 || runs[0].Actions.Total != 1 {
		t.Fatalf("reader: %+v, %v", runs, err)
	}
	// Both may write; the second waits for the first.
	var wg sync.WaitGroup
	for _, jj := range []*Journal{writer, reader} {
		wg.Add(1)
		go func(jj *Journal) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := jj.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: "v"}); err != nil {
					t.Error(err)
					return
				}
			}
		}(jj)
	}
	wg.Wait()
	if s, _ := writer.Run(ctx, "r1"); s.Actions.Total != 41 {
		t.Fatalf("total %d, want 41", s.Actions.Total)
	}
}

// Several processes may open a new file at once (the daemon's first run and
// an admin's `history`): each migration step is applied exactly once.
func TestConcurrentOpenOfNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			errs <- j.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var version int
	if err := rawDB(t, path).QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != SchemaVersion {
		t.Fatalf("user_version %d, %v", version, err)
	}
}

// An interrupted run cancels its context; what its in-flight calls did must
// still be journaled, and the run finished. A new action is refused.
func TestOutcomesRecordedAfterCancel(t *testing.T) {
	j, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	beginTest(t, j, "r1", "apply", t0)
	id, err := j.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: "u"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := j.ActionStarted(ctx, "r1", dsync.JournalAction{Kind: KindEnroll, Username: "v"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ActionStarted with a cancelled context: %v", err)
	}
	if err := j.ActionFinished(ctx, id, ResultFailed, "HTTP 400"); err != nil {
		t.Fatalf("ActionFinished with a cancelled context: %v", err)
	}
	if err := j.FinishRun(ctx, "r1", RunFinish{Status: StatusInterrupted, ExitCode: 143}); err != nil {
		t.Fatalf("FinishRun with a cancelled context: %v", err)
	}
	if err := j.RecordWriteBack(ctx, WriteBack{SysID: "s", OutcomeKey: "k", Result: ResultFailed, RunID: "r1"}); err != nil {
		t.Fatalf("RecordWriteBack with a cancelled context: %v", err)
	}
	if err := j.SetEmailResult(ctx, "r1", t0, ""); err != nil {
		t.Fatalf("SetEmailResult with a cancelled context: %v", err)
	}
	s, _ := j.Run(context.Background(), "r1")
	if s.Status != StatusInterrupted || s.Actions != (ActionCounts{Total: 1, Failed: 1}) || s.EmailStatus != "sent" {
		t.Fatalf("summary %+v", s)
	}
	if h, _ := j.Enrollments(context.Background(), []string{"u"}); len(h) != 0 {
		t.Fatalf("a failed enroll counted: %+v", h)
	}
}
