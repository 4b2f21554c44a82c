package report

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func render(t *testing.T, f func(io.Writer, *Report) error, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTextGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *Report
	}{
		{"apply.txt", sampleReport()},
		{"plan.txt", planReport()},
		{"guard.txt", guardReport()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, render(t, WriteText, tc.r))
		})
	}
}

func TestCSVGolden(t *testing.T) {
	checkGolden(t, "apply.csv", render(t, WriteCSV, sampleReport()))
	checkGolden(t, "guard.csv", render(t, WriteCSV, guardReport()))
}

// The text puts what needs a human before the counts and the request rows,
// and lists only requests with something to say.
func TestTextOrder(t *testing.T) {
	out := string(render(t, WriteText, sampleReport()))
	order := []string{"NEEDS A HUMAN", "Failed actions (1)", "Blocked users (1)", "Conflicts (1)", "Invalid rows (1)", "Warnings (1)", "SUMMARY", "REQUESTS (14; 2 in sync or skipped, not listed)", "DRIFT (2)"}
	last := -1
	for _, s := range order {
		i := strings.Index(out, s)
		if i < 0 {
			t.Fatalf("text report lacks %q:\n%s", s, out)
		}
		if i < last {
			t.Errorf("%q comes too early in:\n%s", s, out)
		}
		last = i
	}
	req := out[strings.Index(out, "REQUESTS"):]
	if strings.Contains(req, "RITM0010008") || strings.Contains(req, "RITM0010014") {
		t.Errorf("in-sync and skipped requests are listed:\n%s", req)
	}
	// Failures first among the rows.
	if p, a := strings.Index(req, "RITM0010007"), strings.Index(req, "RITM0010001"); p < 0 || a < 0 || p > a {
		t.Errorf("the partial failure is not listed before the applied rows:\n%s", req)
	}
	if !strings.Contains(req, "PARTIAL") {
		t.Errorf("outcomes needing a human are not upper-cased:\n%s", req)
	}
}

// A value cannot send escape codes to a terminal nor break a line.
func TestTextCleansControlCharacters(t *testing.T) {
	r := sampleReport()
	r.Requests[0].Detail = "red \x1b[31mALERT\x1b[0m\nnext line\tand tab \u202egnp.exe"
	r.Warnings = append(r.Warnings, "warn\r\nInjected: header")
	out := string(render(t, WriteText, r))
	if strings.ContainsAny(out, "\x1b\r\t\u202e") {
		t.Errorf("raw control characters in the text report: %q", out)
	}
	for _, want := range []string{`red \x1b[31mALERT\x1b[0m\nnext line\tand tab \u202egnp.exe`, `warn\r\nInjected: header`} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks the escaped %q", want)
		}
	}
}

func TestTextCapsLongTables(t *testing.T) {
	r := New("big", ModeApply)
	for i := 0; i < textMaxRows+5; i++ {
		r.Invalid = append(r.Invalid, InvalidRow{File: "x.csv", Line: i + 2, Reason: "invalid_email"})
	}
	out := string(render(t, WriteText, r))
	if !strings.Contains(out, "… and 5 more") {
		t.Errorf("no note of the rows left out")
	}
	if strings.Contains(out, "x.csv:206") || !strings.Contains(out, "x.csv:201") {
		t.Errorf("the cap is not at %d rows", textMaxRows)
	}
}

func readCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(utf8BOM)) {
		t.Fatalf("CSV does not start with a UTF-8 BOM")
	}
	rd := csv.NewReader(bytes.NewReader(data[len(utf8BOM):]))
	recs, err := rd.ReadAll()
	if err != nil {
		t.Fatalf("the CSV report does not parse: %v", err)
	}
	return recs
}

func TestCSVEscapesFormulas(t *testing.T) {
	r := New("inj", ModeApply)
	hostile := []string{`=HYPERLINK("http://x")`, "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"}
	for i, h := range hostile {
		r.Requests = append(r.Requests, RequestRow{Number: "RITM" + string(rune('1'+i)), Username: "u@x", Requester: h, Detail: h, Groups: []string{h}})
	}
	r.Requests = append(r.Requests, RequestRow{Number: "RITM9", Requester: "a=b", Detail: "x-y@z"})
	recs := readCSV(t, render(t, WriteCSV, r))
	if got := recs[0]; !reflect.DeepEqual(got, csvHeader) {
		t.Fatalf("header = %v", got)
	}
	col := func(name string) int {
		for i, h := range csvHeader {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	requester, detail, groups := col("requester"), col("detail"), col("groups")
	for i, h := range hostile {
		rec := recs[1+i]
		// encoding/csv drops a lone CR when writing CRLF lines; the cell
		// must still be escaped.
		want := "'" + strings.ReplaceAll(h, "\r", "")
		for _, c := range []int{requester, detail, groups} {
			if rec[c] != want {
				t.Errorf("cell %q is written %q, want it prefixed with '", h, rec[c])
			}
		}
	}
	last := recs[len(recs)-1]
	if last[requester] != "a=b" || last[detail] != "x-y@z" {
		t.Errorf("harmless cells were changed: %q %q", last[requester], last[detail])
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"=1+2":               "'=1+2",
		"+":                  "'+",
		"-":                  "'-",
		"@x":                 "'@x",
		"\tx":                "'\tx",
		"\rx":                "'\rx",
		"alice@example.com":  "alice@example.com",
		"'=already":          "'=already",
		"RITM0010001":        "RITM0010001",
		" =leading space ok": " =leading space ok",
	} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, r := range []*Report{sampleReport(), planReport(), guardReport()} {
		sent := time.Date(2026, 12, 3, 14, 5, 20, 0, time.UTC)
		r.Email = &EmailStatus{To: []string{"it@example.com"}, SentAt: sent}
		data := render(t, WriteJSON, r)
		got, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		// WriteJSON writes empty lists as [], which read back as empty slices.
		want := *r
		want.Requests, want.Invalid, want.Blocked = nonNil(want.Requests), nonNil(want.Invalid), nonNil(want.Blocked)
		want.Conflicts, want.Drift, want.Failures, want.Warnings = nonNil(want.Conflicts), nonNil(want.Drift), nonNil(want.Failures), nonNil(want.Warnings)
		if want.Summary.SkippedByReason == nil {
			want.Summary.SkippedByReason = map[string]int{}
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("round trip of %s changed the report:\n got %+v\nwant %+v", r.RunID, got, &want)
		}
		// And re-rendering from the JSON gives the same text and CSV.
		if a, b := render(t, WriteText, r), render(t, WriteText, got); !bytes.Equal(a, b) {
			t.Errorf("text from the JSON differs")
		}
		if a, b := render(t, WriteCSV, r), render(t, WriteCSV, got); !bytes.Equal(a, b) {
			t.Errorf("CSV from the JSON differs")
		}
	}
}

func TestJSONSchemaFields(t *testing.T) {
	data := string(render(t, WriteJSON, guardReport()))
	for _, want := range []string{`"schema_version": 1`, `"mode": "APPLY"`, `"guard_tripped": "max_creates`, `"requests": []`, `"failures": []`, `"skipped_by_reason": {}`, `"rate_limited": 0`} {
		if !strings.Contains(data, want) {
			t.Errorf("JSON lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(data, `"email"`) {
		t.Errorf("email is written before any attempt")
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"run_id": "x"}`, "no schema_version"},
		{`{"schema_version": 2}`, "schema_version 2 is not supported"},
		{"{\n  \"schema_version\": 1,\n  \"run_id\": 5\n}", "line 3"},
		{"{\n  \"schema_version\": 1,\n  oops\n}", "line 3"},
		{``, "read JSON report"},
		{`[]`, "read JSON report"},
	} {
		_, err := ReadJSON(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadJSON(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
	_, err := ReadJSONFile(filepath.Join(t.TempDir(), "missing.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestHTMLEscapesEverything(t *testing.T) {
	r := sampleReport()
	const evil = `<script>alert(1)</script>`
	r.Requests[0].Requester = evil
	r.Requests[0].Username = `"><img src=x onerror=alert(2)>`
	r.Requests[6].Detail = evil
	r.Failures[0].DuoMessage = evil
	r.Blocked[0].Detail = `<a href="javascript:alert(3)">x</a>`
	r.Conflicts[0].Values = []string{evil, "b"}
	r.Warnings = append(r.Warnings, evil)
	r.Source.Files[0].Path = `</td></tr></table><h1>pwn</h1>`
	r.RunID = `run<b>`
	out := string(render(t, WriteHTML, r))
	for _, bad := range []string{"<script", "<img", "<a ", "<h1>pwn", "<b>", `href="javascript:`} {
		if strings.Contains(strings.ToLower(out), bad) {
			t.Errorf("HTML report contains %q unescaped", bad)
		}
	}
	if n := strings.Count(out, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 5 {
		t.Errorf("the hostile name is shown escaped %d times, want 5 (requester, detail, Duo message, conflict, warning)", n)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	out := strings.ToLower(string(render(t, WriteHTML, sampleReport())))
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "http://", "https://"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML report contains %q: it must need nothing from outside", bad)
		}
	}
	for _, want := range []string{"<style>", "failed actions (1)", "blocked users (1)", "partial failure (exit 3)", "ritm0010007", "<table"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	// Counts come before the tables.
	if c, f := strings.Index(out, `class="counts"`), strings.Index(out, "failed actions"); c < 0 || c > f {
		t.Errorf("the counts are not at the top")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reports")
	r := sampleReport()
	p, err := WriteFiles(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("report directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	want := map[string]func(io.Writer, *Report) error{p.Text: WriteText, p.CSV: WriteCSV, p.JSON: WriteJSON, p.HTML: WriteHTML}
	for path, f := range want {
		if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), r.RunID+".") {
			t.Errorf("unexpected path %s", path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, render(t, f, r)) {
			t.Errorf("%s differs from its renderer's output", path)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", path, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries, want the 4 reports (no temp files left)", len(entries))
	}

	// Recording an email afterwards rewrites the files; the CSV stays the same.
	csvBefore, _ := os.ReadFile(p.CSV)
	r.Email = &EmailStatus{To: []string{"it@example.com"}, Error: "dial tcp: connection refused"}
	if _, err := WriteFiles(dir, r); err != nil {
		t.Fatal(err)
	}
	csvAfter, _ := os.ReadFile(p.CSV)
	if !bytes.Equal(csvBefore, csvAfter) {
		t.Errorf("the CSV changed when the email status was recorded")
	}
	back, err := ReadJSONFile(p.JSON)
	if err != nil || back.Email == nil || back.Email.Error == "" {
		t.Errorf("email status not in the JSON: %+v, %v", back, err)
	}
	if txt, _ := os.ReadFile(p.Text); !strings.Contains(string(txt), "NOT SENT") {
		t.Errorf("the text report does not say the email failed")
	}
}

func TestWriteFilesRefusesUnsafeRunID(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"", "../escape", "a/b", ".hidden", "run id", "x\n"} {
		r := sampleReport()
		r.RunID = id
		if _, err := WriteFiles(dir, r); err == nil || !strings.Contains(err.Error(), "run id") {
			t.Errorf("WriteFiles with run id %q: %v, want an error naming the run id", id, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) == 0 {
		t.Fatal("temp dir vanished")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.json")); err == nil {
		t.Errorf("a report escaped its directory")
	}
}

func TestWriteFilesUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFiles(filepath.Join(file, "reports"), sampleReport()); err == nil {
		t.Errorf("WriteFiles under a file succeeded")
	}
}

func TestRenderersSurviveEmptyAndOddReports(t *testing.T) {
	odd := New("odd", "")
	odd.Requests = []RequestRow{{Outcome: "weird"}, {}}
	odd.Drift = []DriftRow{{Kind: "new-kind"}}
	odd.Failures = []FailureRow{{}}
	odd.Conflicts = []ConflictRow{{}}
	odd.StartedAt = t0
	odd.FinishedAt = t0.Add(-time.Hour) // clock went backwards
	odd.Summary.SkippedByReason = map[string]int{"": 1}
	for _, r := range []*Report{{}, New("x", ModePlan), odd} {
		for name, f := range map[string]func(io.Writer, *Report) error{"text": WriteText, "csv": WriteCSV, "json": WriteJSON, "html": WriteHTML} {
			if err := f(io.Discard, r); err != nil {
				t.Errorf("%s of %+v: %v", name, r, err)
			}
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderersReportWriteErrors(t *testing.T) {
	for name, f := range map[string]func(io.Writer, *Report) error{"text": WriteText, "csv": WriteCSV, "json": WriteJSON, "html": WriteHTML} {
		if err := f(failWriter{}, sampleReport()); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: %v, want the write error", name, err)
		}
	}
}
