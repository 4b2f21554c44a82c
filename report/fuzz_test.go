package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Any value in any field renders without error, the CSV reads back to the
// escaped values, and the text stays free of control characters.
func FuzzRenderers(f *testing.F) {
	for _, s := range []string{"", "plain", `=HYPERLINK("http://x")`, "<script>alert(1)</script>", "a\r\nBcc: x", "\x1b[31m", "\xff\xfe", "\t-1", "é\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := sampleReport()
		r.Requests[0].Requester = s
		r.Requests[0].Detail = s
		r.Requests[0].Groups = []string{s}
		r.Failures[0].DuoMessage = s
		r.Warnings = []string{s}
		r.Drift[0].DuoValue = s
		for name, w := range map[string]func(io.Writer, *Report) error{"text": WriteText, "csv": WriteCSV, "json": WriteJSON, "html": WriteHTML} {
			if err := w(io.Discard, r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		recs := readCSV(t, render(t, WriteCSV, r))
		var row []string
		for _, rec := range recs[1:] {
			if rec[2] == r.Requests[0].Number {
				row = rec
			}
		}
		// encoding/csv turns CRLF inside a quoted cell into LF and drops a lone CR.
		want := strings.ReplaceAll(strings.ReplaceAll(SafeCell(s), "\r\n", "\n"), "\r", "")
		if utf8.ValidString(s) && row[4] != want {
			t.Errorf("requester %q reads back as %q, want %q", s, row[4], want)
		}
		if strings.ContainsAny(string(render(t, WriteText, r)), "\x1b\r\u202e") {
			t.Errorf("control characters reached the text report for %q", s)
		}
		if strings.Contains(string(render(t, WriteHTML, r)), "<script") {
			t.Errorf("HTML injection with %q", s)
		}
	})
}

// ReadJSON never panics, whatever it is given.
func FuzzReadJSON(f *testing.F) {
	var seed bytes.Buffer
	if err := WriteJSON(&seed, sampleReport()); err != nil {
		f.Fatal(err)
	}
	f.Add(seed.String())
	f.Add(`{"schema_version":1,"requests":[{"line":"x"}]}`)
	f.Add(`{"schema_version":1e400}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ReadJSON(strings.NewReader(s))
		if err == nil {
			_ = WriteText(io.Discard, r)
			_ = WriteHTML(io.Discard, r)
		}
	})
}

// BenchmarkRender renders a report of 10,000 requests in every format.
func BenchmarkRender(b *testing.B) {
	r := sampleReport()
	base := r.Requests
	r.Requests = nil
	for i := 0; i < 10000; i++ {
		row := base[i%len(base)]
		row.Number = fmt.Sprintf("RITM%07d", i)
		r.Requests = append(r.Requests, row)
	}
	r.StartedAt = time.Now()
	var buf bytes.Buffer
	b.ResetTimer()
	for b.Loop() {
		for _, w := range []func(io.Writer, *Report) error{WriteText, WriteCSV, WriteJSON, WriteHTML} {
			buf.Reset()
			if err := w(&buf, r); err != nil {
				b.Fatal(err)
			}
		}
	}
}
