package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// textMaxRows caps each table of the text report: the text is for a terminal
// and an email, the CSV and JSON hold every row.
const textMaxRows = 200

// textMaxDetail caps a detail cell in the requests and drift tables.
const textMaxDetail = 100

// WriteText writes the report for a terminal or the text part of the email:
// the header, then what needs a human (failures, blocked users, conflicts,
// invalid rows, warnings), then the counts, then the requests that had
// something to do. Requests already in sync or skipped are counted, not
// listed.
func WriteText(w io.Writer, r *Report) error {
	tw := &textWriter{w: w}
	tw.header(r)
	tw.needsHuman(r)
	tw.summary(r)
	tw.requests(r)
	tw.drift(r)
	return tw.err
}

// textWriter remembers the first write error so the sections read plainly.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, format, args...)
}

// table writes aligned rows; cells are cleaned of control characters so a
// value can neither break the alignment nor send escape codes to a terminal.
func (t *textWriter) table(indent string, rows [][]string) {
	if t.err != nil || len(rows) == 0 {
		return
	}
	var buf bytes.Buffer
	tab := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = oneLine(c)
		}
		fmt.Fprintln(tab, indent+strings.Join(cells, "\t"))
	}
	tab.Flush() // into a bytes.Buffer: cannot fail
	// Empty last cells leave padding behind; trailing spaces only get in
	// the way (golden files, email clients).
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		t.printf("%s\n", strings.TrimRight(line, " \n"))
	}
}

func (t *textWriter) header(r *Report) {
	t.printf("duosync %s  run %s  %s\n", oneLine(r.Mode), oneLine(r.RunID), oneLine(statusLine(r)))
	var rows [][]string
	if !r.StartedAt.IsZero() {
		when := formatTime(r.StartedAt)
		if d := r.Duration(); d > 0 || !r.FinishedAt.IsZero() {
			when += ", took " + d.Round(time.Millisecond).String()
		}
		rows = append(rows, []string{"Started", when})
	}
	for _, src := range sourceLines(r.Source) {
		rows = append(rows, []string{"Source", src})
	}
	if r.DuoHost != "" {
		rows = append(rows, []string{"Duo", r.DuoHost})
	}
	if r.Version != "" {
		rows = append(rows, []string{"Version", "duosync " + r.Version})
	}
	if r.GuardTripped != "" {
		rows = append(rows, []string{"Guard", "TRIPPED: " + r.GuardTripped + "; nothing was written"})
	}
	if r.GuardOverridden {
		rows = append(rows, []string{"Guard", "overridden with --force"})
	}
	if r.Interrupted {
		rows = append(rows, []string{"Interrupted", "the run was stopped before it finished; a re-run converges"})
	}
	if r.Error != "" {
		rows = append(rows, []string{"Error", r.Error})
	}
	if e := r.Email; e != nil {
		rows = append(rows, []string{"Email", emailLine(e)})
	}
	t.table("", rows)
}

// statusLine is the one-word outcome with its exit code.
func statusLine(r *Report) string {
	s := strings.ToUpper(r.ExitStatus)
	if s == "" {
		s = "FINISHED"
	}
	return fmt.Sprintf("%s (exit %d)", s, r.ExitCode)
}

func emailLine(e *EmailStatus) string {
	to := strings.Join(e.To, ", ")
	if e.Error != "" {
		return "NOT SENT to " + to + ": " + e.Error
	}
	if e.SentAt.IsZero() {
		return "not sent"
	}
	return "sent to " + to + " at " + formatTime(e.SentAt)
}

// sourceLines describes the source, one line per file.
func sourceLines(s Source) []string {
	var out []string
	switch {
	case len(s.Files) > 0:
		for _, f := range s.Files {
			line := fmt.Sprintf("%s (%d rows, sha256 %s)", f.Path, f.Rows, shortHash(f.SHA256))
			if f.Refused != "" {
				line += " REFUSED: " + f.Refused
			}
			out = append(out, line)
		}
	case s.Instance != "":
		line := s.Instance
		if s.Table != "" {
			line += " table " + s.Table
		}
		if s.Query != "" {
			line += " query " + s.Query
		}
		out = append(out, line)
	case s.Kind != "":
		out = append(out, s.Kind)
	}
	return out
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

func (t *textWriter) needsHuman(r *Report) {
	if len(r.Failures)+len(r.Blocked)+len(r.Conflicts)+len(r.Invalid)+len(r.Warnings) == 0 {
		return
	}
	t.printf("\nNEEDS A HUMAN\n")
	if len(r.Failures) > 0 {
		t.printf("Failed actions (%d)\n", len(r.Failures))
		var rows [][]string
		for _, f := range capRows(r.Failures) {
			rows = append(rows, []string{strings.Join(f.Requests, " "), f.Username, actionLabel(f.Action, f.Group),
				attempts(f.Attempts), failureMessage(f)})
		}
		t.table("  ", rows)
		t.more(len(r.Failures))
	}
	if len(r.Blocked) > 0 {
		t.printf("Blocked users (%d): Duo has them disabled, locked out or pending deletion; duosync does not touch them\n", len(r.Blocked))
		var rows [][]string
		for _, b := range capRows(r.Blocked) {
			rows = append(rows, []string{b.Username, b.Status, strings.Join(b.Requests, " "), b.Detail})
		}
		t.table("  ", rows)
		t.more(len(r.Blocked))
	}
	if len(r.Conflicts) > 0 {
		t.printf("Conflicts (%d): requests for one user disagree; none of them was applied\n", len(r.Conflicts))
		var rows [][]string
		for _, c := range capRows(r.Conflicts) {
			rows = append(rows, []string{c.Username, c.Field + ": " + quoteAll(c.Values), strings.Join(c.Requests, " "), c.Detail})
		}
		t.table("  ", rows)
		t.more(len(r.Conflicts))
	}
	if len(r.Invalid) > 0 {
		t.printf("Invalid rows (%d)\n", len(r.Invalid))
		var rows [][]string
		for _, in := range capRows(r.Invalid) {
			rows = append(rows, []string{location(in.File, in.Line), in.Column, in.Reason, in.Detail})
		}
		t.table("  ", rows)
		t.more(len(r.Invalid))
	}
	if len(r.Warnings) > 0 {
		t.printf("Warnings (%d)\n", len(r.Warnings))
		for _, w := range capRows(r.Warnings) {
			t.printf("  %s\n", oneLine(w))
		}
		t.more(len(r.Warnings))
	}
}

// more notes the rows a capped table left out.
func (t *textWriter) more(n int) {
	if n > textMaxRows {
		t.printf("  … and %d more (see the CSV and JSON reports)\n", n-textMaxRows)
	}
}

func capRows[T any](rows []T) []T {
	if len(rows) > textMaxRows {
		return rows[:textMaxRows]
	}
	return rows
}

func (t *textWriter) summary(r *Report) {
	s := r.Summary
	plan := r.IsPlan()
	t.printf("\nSUMMARY\n")
	rows := [][]string{
		{"Rows", fmt.Sprintf("%d read, %d valid, %d invalid, %d not approved or skipped%s",
			s.RowsRead, s.Valid, s.Invalid, s.NotApproved, reasons(s.SkippedByReason))},
		{"Users", fmt.Sprintf("%d desired, %d already in sync, %d %s, %d %s",
			s.UsersDesired, s.InSync, s.Created, verb(plan, "created", "to create"), s.Updated, verb(plan, "updated", "to update"))},
		{"Enrollment", fmt.Sprintf("%d %s, %d pending (not re-sent yet)",
			s.EnrollmentsSent, verb(plan, "emails sent", "emails to send"), s.EnrollmentsPending)},
		{"Groups", fmt.Sprintf("%d %s, %d %s",
			s.MembershipsAdded, verb(plan, "memberships added", "memberships to add"),
			s.GroupsCreated, verb(plan, "groups created", "groups to create"))},
		{"Attention", fmt.Sprintf("%d blocked, %d conflicts, %d failed", s.Blocked, s.Conflicts, s.Failed)},
		{"Duo API", fmt.Sprintf("%d calls, %d retries, %d rate-limited (429)", s.APICalls, s.Retries, s.RateLimited)},
	}
	t.table("  ", rows)
}

// verb picks the wording for an applied run or a plan.
func verb(plan bool, done, todo string) string {
	if plan {
		return todo
	}
	return done
}

// reasons formats skip counts as " (reason n, reason n)".
func reasons(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedReasons(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (t *textWriter) requests(r *Report) {
	var listed []RequestRow
	quiet := 0
	for _, row := range sortedRequests(r.Requests) {
		if row.Outcome == OutcomeInSync || row.Outcome == OutcomeSkipped {
			quiet++
			continue
		}
		listed = append(listed, row)
	}
	t.printf("\nREQUESTS (%d", len(r.Requests))
	if quiet > 0 {
		t.printf("; %d in sync or skipped, not listed", quiet)
	}
	t.printf(")\n")
	switch {
	case len(r.Requests) == 0:
		t.printf("  none\n")
		return
	case len(listed) == 0:
		t.printf("  nothing to do\n")
		return
	}
	rows := [][]string{{"NUMBER", "USERNAME", "OUTCOME", "ACTIONS", "DUO USER", "DETAIL"}}
	for _, row := range capRows(listed) {
		outcome := row.Outcome
		if needsHumanOutcome(outcome) {
			outcome = strings.ToUpper(outcome)
		}
		rows = append(rows, []string{row.Number, row.Username, outcome, strings.Join(row.Actions, ", "),
			row.DuoUserID, truncate(row.Detail, textMaxDetail)})
	}
	t.table("  ", rows)
	t.more(len(listed))
}

func (t *textWriter) drift(r *Report) {
	if len(r.Drift) == 0 {
		return
	}
	t.printf("\nDRIFT (%d): reported, not changed\n", len(r.Drift))
	var rows [][]string
	for _, d := range capRows(r.Drift) {
		rows = append(rows, []string{d.Username, driftLine(d)})
	}
	t.table("  ", rows)
	t.more(len(r.Drift))
}

// driftLine says what differs in one sentence.
func driftLine(d DriftRow) string {
	var s string
	switch d.Kind {
	case DriftUnexplainedMember:
		s = fmt.Sprintf("member of %q, no approved request explains it", d.Group)
	case DriftAttribute:
		s = fmt.Sprintf("%s: Duo has %q, the request says %q", d.Field, d.DuoValue, d.Wanted)
	default:
		s = d.Kind
	}
	if d.Detail != "" {
		s += "; " + d.Detail
	}
	return truncate(s, textMaxDetail+60)
}

// actionLabel names an action for people: "add_membership" + "MFA Users" → `add_membership "MFA Users"`.
func actionLabel(action, group string) string {
	if group == "" {
		return action
	}
	return action + " " + strconv.Quote(group)
}

func attempts(n int) string {
	switch {
	case n <= 0:
		return ""
	case n == 1:
		return "1 attempt"
	default:
		return fmt.Sprintf("%d attempts", n)
	}
}

// failureMessage prefers what Duo said, then the error.
func failureMessage(f FailureRow) string {
	var parts []string
	if f.DuoCode != 0 || f.DuoMessage != "" {
		duo := "Duo"
		if f.DuoCode != 0 {
			duo += " " + strconv.Itoa(f.DuoCode)
		}
		if f.DuoMessage != "" {
			duo += ": " + f.DuoMessage
		}
		parts = append(parts, duo)
	} else if f.HTTPStatus != 0 {
		parts = append(parts, "HTTP "+strconv.Itoa(f.HTTPStatus))
	}
	if f.Error != "" && (len(parts) == 0 || !strings.Contains(f.Error, f.DuoMessage)) {
		parts = append(parts, f.Error)
	}
	return strings.Join(parts, "; ")
}

func location(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func formatTime(t time.Time) string {
	return t.Format("2006-01-02 15:04:05 MST")
}

// oneLine makes a value safe for one aligned line: control characters
// (newlines, tabs, terminal escapes) and bidirectional overrides, which could
// make a line read differently than it is, are shown escaped (\n, \t, \x1b,
// \u202e), and invalid UTF-8 as U+FFFD.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError:
			b.WriteRune('\uFFFD')
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isBidiControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

func unsafeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || isBidiControl(r)
}

// isBidiControl reports the embedding, override and isolate characters.
func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}
