package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlMaxRows caps the tables of the HTML report, which is an email body;
// the attached CSV has every request.
const htmlMaxRows = 1000

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"join":         strings.Join,
	"location":     location,
	"outcomeClass": outcomeClass,
	"rowStyle":     rowStyle,
}).Parse(htmlSource))

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// no scripts, images or links to fetch, every value escaped by html/template.
// It is the body of the email and reads in a mail client (plain tables).
func WriteHTML(w io.Writer, r *Report) error {
	if err := htmlTemplate.Execute(w, newHTMLView(r)); err != nil {
		return fmt.Errorf("write HTML report %s: %w", r.RunID, err)
	}
	return nil
}

// htmlView is what the template needs, computed here so the template stays
// plain markup.
type htmlView struct {
	R           *Report
	S           Summary
	Subject     string
	Status      string
	StatusClass string
	Started     string
	Took        string
	SourceLines []string
	EmailLine   string
	Reasons     string
	Boxes       []htmlBox

	Rows        []RequestRow
	RowsMore    int
	Quiet       int
	Invalid     []InvalidRow
	InvalidMore int
	Drift       []DriftRow
	DriftMore   int
}

// htmlBox is one count at the top. Style repeats the class's colours inline
// because some mail clients drop <style> blocks.
type htmlBox struct {
	N     int
	Label string
	Class string
	Style template.CSS
}

var boxStyles = map[string]template.CSS{
	"":     "border:1px solid #d0d7de;border-radius:6px;padding:8px;text-align:center;background:#f6f8fa",
	"good": "border:1px solid #4ac26b;border-radius:6px;padding:8px;text-align:center;background:#dafbe1;color:#116329",
	"warn": "border:1px solid #d4a72c;border-radius:6px;padding:8px;text-align:center;background:#fff8c5;color:#7d4e00",
	"bad":  "border:1px solid #ff8182;border-radius:6px;padding:8px;text-align:center;background:#ffebe9;color:#82071e",
}

func (v htmlView) Verb(done, todo string) string { return verb(v.R.IsPlan(), done, todo) }

func newHTMLView(r *Report) htmlView {
	s := r.Summary
	plan := r.IsPlan()
	v := htmlView{
		R:           r,
		S:           s,
		Subject:     Subject(r),
		Status:      statusLine(r),
		StatusClass: statusClass(r),
		SourceLines: sourceLines(r.Source),
		Reasons:     reasons(s.SkippedByReason),
	}
	if !r.StartedAt.IsZero() {
		v.Started = formatTime(r.StartedAt)
		if !r.FinishedAt.IsZero() {
			v.Took = r.Duration().Round(time.Millisecond).String()
		}
	}
	if r.Email != nil {
		v.EmailLine = emailLine(r.Email)
	}
	good := func(n int) string {
		if n > 0 {
			return "good"
		}
		return ""
	}
	alarm := func(n int, class string) string {
		if n > 0 {
			return class
		}
		return ""
	}
	failed := max(s.Failed, len(r.Failures))
	blocked := max(s.Blocked, len(r.Blocked))
	conflicts := max(s.Conflicts, len(r.Conflicts))
	invalid := max(s.Invalid, len(r.Invalid))
	v.Boxes = []htmlBox{
		{N: s.Created, Label: verb(plan, "created", "to create"), Class: good(s.Created)},
		{N: s.EnrollmentsSent, Label: verb(plan, "enrolled", "to enroll"), Class: good(s.EnrollmentsSent)},
		{N: s.MembershipsAdded, Label: verb(plan, "added to groups", "to add to groups"), Class: good(s.MembershipsAdded)},
		{N: s.GroupsCreated, Label: verb(plan, "groups created", "groups to create"), Class: good(s.GroupsCreated)},
		{N: failed, Label: "failed", Class: alarm(failed, "bad")},
		{N: blocked, Label: "blocked", Class: alarm(blocked, "bad")},
		{N: conflicts, Label: "conflicts", Class: alarm(conflicts, "warn")},
		{N: invalid, Label: "invalid rows", Class: alarm(invalid, "warn")},
	}
	for i := range v.Boxes {
		v.Boxes[i].Style = boxStyles[v.Boxes[i].Class]
	}

	for _, row := range sortedRequests(r.Requests) {
		if row.Outcome == OutcomeInSync || row.Outcome == OutcomeSkipped {
			v.Quiet++
			continue
		}
		if len(v.Rows) == htmlMaxRows {
			v.RowsMore++
			continue
		}
		v.Rows = append(v.Rows, row)
	}
	v.Invalid, v.InvalidMore = capped(r.Invalid, htmlMaxRows)
	v.Drift, v.DriftMore = capped(r.Drift, htmlMaxRows)
	return v
}

func capped[T any](rows []T, n int) ([]T, int) {
	if len(rows) > n {
		return rows[:n], len(rows) - n
	}
	return rows, 0
}

func statusClass(r *Report) string {
	switch {
	case r.Failed():
		return "bad"
	case r.NeedsHuman():
		return "warn"
	}
	return "ok"
}

// outcomeClass is the CSS class of a request row.
func outcomeClass(outcome string) string {
	switch outcome {
	case OutcomeFailed, OutcomePartial:
		return "failed"
	case OutcomeBlocked:
		return "blocked"
	case OutcomeConflict:
		return "conflict"
	case OutcomeInvalid:
		return "invalid"
	}
	return ""
}

// rowStyle repeats a request row's highlight inline, for mail clients that
// drop <style> blocks.
func rowStyle(outcome string) template.CSS {
	switch outcomeClass(outcome) {
	case "failed":
		return "background-color:#ffebe9"
	case "blocked", "conflict":
		return "background-color:#fff8c5"
	case "invalid":
		return "background-color:#fff1e5"
	}
	return ""
}
