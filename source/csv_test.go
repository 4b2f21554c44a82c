package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func fixture(name string) string { return filepath.Join("testdata", "csv", name) }

type readOut struct {
	reqs []Request
	res  CSVResult
	err  error
}

func readCSV(t *testing.T, opts CSVOptions, patterns ...string) readOut {
	t.Helper()
	var out readOut
	out.res, out.err = ReadCSV(context.Background(), patterns, opts, func(r Request) error {
		out.reqs = append(out.reqs, r)
		return nil
	})
	return out
}

// where lists the emitted requests as "file:line number".
func (o readOut) where() []string {
	var s []string
	for _, r := range o.reqs {
		s = append(s, fmt.Sprintf("%s:%d %s", filepath.Base(r.Origin.File), r.Origin.Line, r.Number()))
	}
	return s
}

// problems lists the problems as "file:line column reason".
func (o readOut) problems() []string {
	var s []string
	for _, p := range o.res.Problems {
		s = append(s, fmt.Sprintf("%s:%d %s %s", filepath.Base(p.File), p.Line, p.Column, p.Reason))
	}
	return s
}

var defaultColumns = []string{"number", "sys_id", "approval", "state", "cat_item", "requested_for.user_name",
	"requested_for.email", "requested_for.first_name", "requested_for.last_name", "requested_for.name",
	"variables.duo_group", "sys_updated_on"}

// TestReadCSVFixtures reads each accepted quirk fixture and checks exactly
// what comes out: the records with their lines, chosen field values, the
// problems, and the file's description.
func TestReadCSVFixtures(t *testing.T) {
	tests := []struct {
		file     string
		opts     CSVOptions
		where    []string
		fields   map[string]map[string]string // by RITM number: fields to check
		problems []string
		encoding string
		rows     int
		columns  []string
	}{
		{
			file:     "fieldnames_lf.csv",
			where:    []string{"fieldnames_lf.csv:2 RITM0010001", "fieldnames_lf.csv:3 RITM0010002"},
			fields:   map[string]map[string]string{"RITM0010002": {"requested_for.email": "anna@example.com", "variables.duo_group": "VPN Users", "sys_id": "00000000000000000000000000002712"}},
			encoding: "utf-8", rows: 2, columns: defaultColumns,
		},
		{
			// CRLF, embedded commas, doubled quotes, a field over three lines:
			// the record after it is on line 7
			file:  "crlf_quoted.csv",
			where: []string{"crlf_quoted.csv:2 RITM0010001", "crlf_quoted.csv:3 RITM0010002", "crlf_quoted.csv:4 RITM0010003", "crlf_quoted.csv:7 RITM0010004"},
			fields: map[string]map[string]string{
				"RITM0010001": {"requested_for.name": "Nguyen, Thi", "sys_updated_on": "2026-11-30 14:05:12"},
				"RITM0010002": {"requested_for.name": `Siobhan "Shiv" O'Brien`, "requested_for.last_name": "O'Brien"},
				"RITM0010003": {"requested_for.name": "Min\nLee\n(two lines)", "variables.duo_group": "MFA Users"},
				"RITM0010004": {"requested_for.name": "Last Row"},
			},
			encoding: "utf-8", rows: 4, columns: defaultColumns,
		},
		{
			// label headers, reordered, with an extra column
			file:  "labels.csv",
			where: []string{"labels.csv:2 RITM0010001"},
			fields: map[string]map[string]string{"RITM0010001": {
				"requested_for.email": "ada@example.com", "requested_for.user_name": "alovelace",
				"requested_for.first_name": "Ada", "requested_for.last_name": "Lovelace", "requested_for.name": "Ada Lovelace",
				"cat_item": "Duo Group Access", "approval": "Approved", "state": "Work in Progress",
				"sys_updated_on": "2026-11-30 14:05:12", "sys_id": "0123456789abcdef0123456789abcdef",
				"short_description": "Duo access please", "variables.duo_group": "Finance Apps",
			}},
			encoding: "utf-8", rows: 1,
			columns: []string{"requested_for.email", "number", "short_description", "requested_for.user_name", "approval",
				"cat_item", "requested_for.first_name", "requested_for.last_name", "requested_for.name", "state",
				"sys_updated_on", "sys_id", "variables.duo_group"},
		},
		{
			file:     "utf8_bom.csv",
			where:    []string{"utf8_bom.csv:2 RITM0010001"},
			fields:   map[string]map[string]string{"RITM0010001": {"number": "RITM0010001", "requested_for.name": "José Álvarez", "requested_for.last_name": "Álvarez"}},
			encoding: "utf-8-bom", rows: 1, columns: defaultColumns,
		},
		{
			file:  "windows1252.csv",
			where: []string{"windows1252.csv:2 RITM0010001", "windows1252.csv:3 RITM0010002"},
			fields: map[string]map[string]string{
				"RITM0010001": {"requested_for.name": "Dieter Müller"},
				"RITM0010002": {"requested_for.first_name": "Gaëlle", "requested_for.name": "Moreau, Gaëlle €"},
			},
			encoding: "windows-1252", rows: 2, columns: defaultColumns,
		},
		{
			file: "windows1252.csv", opts: CSVOptions{Encoding: "Windows-1252"},
			where:    []string{"windows1252.csv:2 RITM0010001", "windows1252.csv:3 RITM0010002"},
			fields:   map[string]map[string]string{"RITM0010001": {"requested_for.last_name": "Müller"}},
			encoding: "windows-1252", rows: 2, columns: defaultColumns,
		},
		{
			// plain ASCII read as forced Windows-1252 is the same text
			file: "fieldnames_lf.csv", opts: CSVOptions{Encoding: "cp1252"},
			where:    []string{"fieldnames_lf.csv:2 RITM0010001", "fieldnames_lf.csv:3 RITM0010002"},
			encoding: "windows-1252", rows: 2, columns: defaultColumns,
		},
		{
			file: "utf8_bom.csv", opts: CSVOptions{Encoding: "utf8"},
			where:    []string{"utf8_bom.csv:2 RITM0010001"},
			fields:   map[string]map[string]string{"RITM0010001": {"number": "RITM0010001", "requested_for.first_name": "José"}},
			encoding: "utf-8-bom", rows: 1, columns: defaultColumns,
		},
		{
			// a ' is stripped only before = + - @
			file:  "formula.csv",
			where: []string{"formula.csv:2 RITM0010001", "formula.csv:3 RITM0010002"},
			fields: map[string]map[string]string{
				"RITM0010001": {"requested_for.name": "=HYPERLINK(x)", "requested_for.user_name": "+plus", "variables.duo_group": "-minus", "state": "-5"},
				"RITM0010002": {"requested_for.name": "@at", "requested_for.user_name": "'plain", "variables.duo_group": "''", "state": "''=twice"},
			},
			encoding: "utf-8", rows: 2,
			columns: []string{"number", "requested_for.name", "requested_for.user_name", "variables.duo_group", "state"},
		},
		{
			// raw values pass through unchanged (the engine interprets them)
			file:     "raw_values.csv",
			where:    []string{"raw_values.csv:2 RITM0010001"},
			fields:   map[string]map[string]string{"RITM0010001": {"approval": "approved", "state": "3", "cat_item": "9f1b2c3d4e5f60718293a4b5c6d7e8f9"}},
			encoding: "utf-8", rows: 1, columns: defaultColumns,
		},
		{
			// broken rows are reported with their line and skipped; the rest go on
			file:  "bad_rows.csv",
			where: []string{"bad_rows.csv:2 RITM0010001", "bad_rows.csv:8 RITM0010007"},
			problems: []string{
				"bad_rows.csv:3  wrong_field_count",
				"bad_rows.csv:4  bad_quoting",
				"bad_rows.csv:5 number missing_number",
				"bad_rows.csv:7  wrong_field_count",
			},
			encoding: "utf-8", rows: 6, columns: defaultColumns,
		},
		{
			// two exports concatenated with cat: the second one's BOM and
			// header (in labels) are a problem, never a request
			file:     "concatenated.csv",
			where:    []string{"concatenated.csv:2 RITM0010001", "concatenated.csv:3 RITM0010002", "concatenated.csv:5 RITM0010003"},
			fields:   map[string]map[string]string{"RITM0010003": {"number": "RITM0010003", "requested_for.email": "user10003@example.com"}},
			problems: []string{"concatenated.csv:4  repeated_header"},
			encoding: "utf-8-bom", rows: 4, columns: defaultColumns,
		},
		{
			// classic-Mac CR-only line endings, a CR inside a quoted name:
			// read line by line, with the lines counted at each CR
			file:  "cr_only.csv",
			where: []string{"cr_only.csv:2 RITM0010001", "cr_only.csv:3 RITM0010002", "cr_only.csv:6 RITM0010004"},
			fields: map[string]map[string]string{
				"RITM0010002": {"requested_for.name": "Two\nLines", "sys_updated_on": "2026-11-30 14:05:12"},
				"RITM0010004": {"sys_updated_on": "2026-11-30 14:05:12"},
			},
			problems: []string{"cr_only.csv:5  wrong_field_count"},
			encoding: "utf-8", rows: 4, columns: defaultColumns,
		},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.opts.Encoding, func(t *testing.T) {
			out := readCSV(t, tc.opts, fixture(tc.file))
			if out.err != nil {
				t.Fatalf("ReadCSV: %v", out.err)
			}
			if got := out.where(); !reflect.DeepEqual(got, tc.where) {
				t.Errorf("records:\n got  %q\n want %q", got, tc.where)
			}
			if got := out.problems(); !reflect.DeepEqual(got, tc.problems) {
				t.Errorf("problems:\n got  %q\n want %q", got, tc.problems)
			}
			for _, r := range out.reqs {
				if len(r.Fields) != len(tc.columns) {
					t.Errorf("%s has %d fields, want one per column (%d)", r.Number(), len(r.Fields), len(tc.columns))
				}
				for k, want := range tc.fields[r.Number()] {
					if got, ok := r.Fields[k]; !ok || got != want {
						t.Errorf("%s %s = %q (present %v), want %q", r.Number(), k, got, ok, want)
					}
				}
			}
			if len(out.res.Files) != 1 {
				t.Fatalf("files: %+v", out.res.Files)
			}
			fi := out.res.Files[0]
			if fi.Encoding != tc.encoding || fi.Rows != tc.rows || fi.Refused != "" || len(fi.SHA256) != 64 {
				t.Errorf("file info %+v, want encoding %s, %d rows", fi, tc.encoding, tc.rows)
			}
			if !reflect.DeepEqual(fi.Columns, tc.columns) {
				t.Errorf("columns:\n got  %q\n want %q", fi.Columns, tc.columns)
			}
			if out.res.Requests != len(out.reqs) {
				t.Errorf("Requests = %d, emitted %d", out.res.Requests, len(out.reqs))
			}
		})
	}
}

func TestReadCSVProblemDetails(t *testing.T) {
	out := readCSV(t, CSVOptions{}, fixture("bad_rows.csv"))
	want := []string{
		"testdata/csv/bad_rows.csv:3: the record has 13 fields, the header has 12; skipped",
		`testdata/csv/bad_rows.csv:4: broken quoting: bare " in non-quoted-field at line 4, character 120; skipped`,
		"testdata/csv/bad_rows.csv:5: number: the RITM number is empty; skipped",
		"testdata/csv/bad_rows.csv:7: the record has 2 fields, the header has 12; skipped",
	}
	var got []string
	for _, p := range out.res.Problems {
		got = append(got, p.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got  %q\n want %q", got, want)
	}
}

// TestReadCSVRefused checks that each kind of file that is no export is
// refused as a whole, with a reason saying what it looks like, and that
// nothing is emitted.
func TestReadCSVRefused(t *testing.T) {
	tests := []struct {
		file string
		opts CSVOptions
		want string // in FileInfo.Refused
	}{
		{"html_login.csv", CSVOptions{}, `an HTML page, not a CSV export (title "Log in | ServiceNow"); ServiceNow answers with its login page when the session has expired`},
		{"binary.csv", CSVOptions{}, "binary data, not text (a NUL byte at offset 26)"},
		{"empty.csv", CSVOptions{}, "an empty file (0 bytes)"},
		{"whitespace.csv", CSVOptions{}, "an empty file (only whitespace)"},
		{"header_only.csv", CSVOptions{}, "header only: the export has no data rows"},
		{"semicolon.csv", CSVOptions{}, `a semicolon-delimited file (header "number;sys_id;approval;`},
		{"no_columns.csv", CSVOptions{}, "no recognisable ServiceNow columns (found: name, amount, date)"},
		{"missing_number.csv", CSVOptions{}, "missing the required column number (the RITM number); found: sys_id, approval, requested_for.email"},
		{"duplicate_header.csv", CSVOptions{}, "column requested_for.email appears twice (columns 2 and 3)"},
		{"invalid_encoding.csv", CSVOptions{}, "invalid text: line 2 (byte offset 253) holds byte 0x81, which is not valid UTF-8 and not a Windows-1252 character either"},
		{"invalid_encoding.csv", CSVOptions{Encoding: "windows-1252"}, "line 2 (byte offset 253) holds byte 0x81, which is not valid UTF-8 and not a Windows-1252 character either (windows-1252 was forced)"},
		{"windows1252.csv", CSVOptions{Encoding: "utf-8"}, "invalid UTF-8 at line 2 (byte offset 300), but UTF-8 was forced"},
		{"utf8_bom.csv", CSVOptions{Encoding: "windows-1252"}, "starts with a UTF-8 byte-order mark, but windows-1252 was forced"},
		{"xlsx.csv", CSVOptions{}, "a ZIP archive, probably an Excel .xlsx workbook"},
		{"mixed_encoding.csv", CSVOptions{}, "mixed charsets: line 2 holds UTF-8 text but line 3 (byte offset 114) is not UTF-8"},
		{"mixed_encoding_late.csv", CSVOptions{}, "mixed charsets: line 3 holds UTF-8 text but line 2 (byte offset 78) is not UTF-8"},
		{"utf16.csv", CSVOptions{}, "UTF-16 text"},
		{"unterminated.csv", CSVOptions{}, "a quoted field opened at line 3 is never closed: lines 3 to 5 (the end of the file) cannot be read as records"},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.opts.Encoding, func(t *testing.T) {
			out := readCSV(t, tc.opts, fixture(tc.file))
			if !errors.Is(out.err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", out.err)
			}
			if !strings.Contains(out.err.Error(), fixture(tc.file)) {
				t.Errorf("error %q does not name the file", out.err)
			}
			if len(out.reqs) != 0 {
				t.Errorf("emitted %d records from a refused file", len(out.reqs))
			}
			if len(out.res.Files) != 1 {
				t.Fatalf("files: %+v", out.res.Files)
			}
			fi := out.res.Files[0]
			if !strings.Contains(fi.Refused, tc.want) {
				t.Errorf("Refused = %q\nwant it to contain %q", fi.Refused, tc.want)
			}
			if len(fi.SHA256) != 64 {
				t.Errorf("SHA256 = %q", fi.SHA256)
			}
		})
	}
}

func TestReadCSVRefusedFileStopsTheOthers(t *testing.T) {
	out := readCSV(t, CSVOptions{}, fixture("fieldnames_lf.csv"), fixture("html_login.csv"))
	if !errors.Is(out.err, ErrRefused) || !strings.Contains(out.err.Error(), "html_login.csv: an HTML page") {
		t.Fatalf("err = %v", out.err)
	}
	if len(out.reqs) != 0 {
		t.Errorf("emitted %d records although a file was refused", len(out.reqs))
	}
	if len(out.res.Files) != 2 || out.res.Files[0].Refused != "" || out.res.Files[1].Refused == "" {
		t.Errorf("files: %+v", out.res.Files)
	}
}

func TestReadCSVSeveralFiles(t *testing.T) {
	for _, patterns := range [][]string{
		{fixture("dup_a.csv"), fixture("dup_b.csv")},
		{fixture("dup_*.csv")},
		{fixture("dup_a.csv"), fixture("dup_*.csv")}, // a file named twice is read once
	} {
		t.Run(strings.Join(patterns, "+"), func(t *testing.T) {
			out := readCSV(t, CSVOptions{}, patterns...)
			if out.err != nil {
				t.Fatal(out.err)
			}
			// RITM0010001 is identical in both (other column order, an extra
			// empty column): counted once. RITM0010002 differs: a conflict.
			wantWhere := []string{"dup_a.csv:2 RITM0010001", "dup_a.csv:3 RITM0010002", "dup_b.csv:4 RITM0010003"}
			if got := out.where(); !reflect.DeepEqual(got, wantWhere) {
				t.Errorf("records %q, want %q", got, wantWhere)
			}
			if out.res.Duplicates != 1 {
				t.Errorf("Duplicates = %d, want 1", out.res.Duplicates)
			}
			if !reflect.DeepEqual(out.res.Conflicts, []string{"RITM0010002"}) {
				t.Errorf("Conflicts = %q", out.res.Conflicts)
			}
			if got, want := out.problems(), []string{"dup_b.csv:3 number conflicting_duplicate"}; !reflect.DeepEqual(got, want) {
				t.Errorf("problems %q, want %q", got, want)
			}
			if len(out.res.Problems) == 1 && !strings.Contains(out.res.Problems[0].Detail, "RITM0010002 is also at testdata/csv/dup_a.csv:3 with different content") {
				t.Errorf("detail %q", out.res.Problems[0].Detail)
			}
			if len(out.res.Files) != 2 || out.res.Files[0].Rows != 2 || out.res.Files[1].Rows != 3 {
				t.Errorf("files %+v", out.res.Files)
			}
		})
	}
}

func TestReadCSVDuplicateInOneFile(t *testing.T) {
	dir := t.TempDir()
	hdr := "number,sys_id,requested_for.email\n"
	path := writeFile(t, dir, "a.csv", hdr+"RITM1,a,x@example.com\nritm1 ,a,x@example.com\nRITM1,a,y@example.com\n")
	out := readCSV(t, CSVOptions{}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	// the number is compared trimmed and case-folded, but the record's
	// content is compared exactly: "ritm1 " differs from "RITM1"
	if got, want := out.where(), []string{"a.csv:2 RITM1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if got, want := out.problems(), []string{"a.csv:3 number conflicting_duplicate", "a.csv:4 number conflicting_duplicate"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if !reflect.DeepEqual(out.res.Conflicts, []string{"RITM1"}) {
		t.Errorf("Conflicts = %q, want the number once", out.res.Conflicts)
	}
}

func TestReadCSVPatternErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		patterns []string
		want     string
		is       error
	}{
		{nil, "no CSV export given", nil},
		{[]string{filepath.Join(dir, "*.csv")}, "matches no file", nil},
		{[]string{filepath.Join(dir, "missing.csv")}, "missing.csv", fs.ErrNotExist},
		{[]string{dir}, "is a directory", nil},
		{[]string{"[bad"}, "syntax error in pattern", nil},
	}
	for _, tc := range tests {
		out := readCSV(t, CSVOptions{}, tc.patterns...)
		if out.err == nil || !strings.Contains(out.err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.patterns, out.err, tc.want)
		}
		if tc.is != nil && !errors.Is(out.err, tc.is) {
			t.Errorf("%q: err = %v, want errors.Is %v", tc.patterns, out.err, tc.is)
		}
	}
	if _, err := ReadCSV(context.Background(), []string{fixture("fieldnames_lf.csv")}, CSVOptions{Encoding: "latin9"}, nil); err == nil ||
		!strings.Contains(err.Error(), `unknown CSV encoding "latin9"`) {
		t.Errorf("unknown encoding: err = %v", err)
	}
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRows writes a header and n generated rows.
func writeRows(t testing.TB, dir, name string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("number,requested_for.email\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "RITM%07d,user%d@example.com\n", i, i)
	}
	return writeFile(t, dir, name, b.String())
}

func TestReadCSVRowLimitWarning(t *testing.T) {
	dir := t.TempDir()
	out := readCSV(t, CSVOptions{}, writeRows(t, dir, "at_limit.csv", ServiceNowExportLimit))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.reqs) != 10000 || len(out.res.Warnings) != 1 ||
		!strings.Contains(out.res.Warnings[0], "at_limit.csv: exactly 10000 data rows, ServiceNow's export row limit: the export was probably cut off") {
		t.Errorf("%d records, warnings %q", len(out.reqs), out.res.Warnings)
	}

	five := writeRows(t, dir, "five.csv", 5)
	for _, tc := range []struct {
		limit    int
		warnings int
	}{
		{5, 1},  // at a configured limit
		{6, 0},  // below it
		{4, 0},  // above it: not a cut-off export
		{0, 0},  // the default, 10,000
		{-1, 0}, // disabled
	} {
		out := readCSV(t, CSVOptions{MaxRowLimitWarn: tc.limit}, five)
		if len(out.res.Warnings) != tc.warnings || len(out.reqs) != 5 {
			t.Errorf("limit %d: %d records, warnings %q", tc.limit, len(out.reqs), out.res.Warnings)
		}
	}
}

func TestReadCSVFieldTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("x", DefaultMaxFieldBytes+1)
	path := writeFile(t, dir, "big.csv", "number,requested_for.name,requested_for.email\n"+
		"RITM1,Ann,ann@example.com\n"+
		"RITM2,\""+big+"\",bob@example.com\n"+
		"RITM3,"+big+",carl@example.com\n"+
		"RITM4,\"two\nlines\",dora@example.com\n")
	out := readCSV(t, CSVOptions{}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if got, want := out.where(), []string{"big.csv:2 RITM1", "big.csv:5 RITM4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if got, want := out.problems(), []string{"big.csv:3 requested_for.name field_too_large", "big.csv:4 requested_for.name field_too_large"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if len(out.reqs) == 2 && out.reqs[1].Get("requested_for.name") != "two\nlines" {
		t.Errorf("record after the cut: %q", out.reqs[1].Fields)
	}
}

func TestReadCSVRecordTooLarge(t *testing.T) {
	dir := t.TempDir()
	// 40 fields of 90 bytes: each under the 100-byte field limit, together
	// over the 1,600-byte record limit
	fields := strings.TrimSuffix(strings.Repeat(strings.Repeat("y", 90)+",", 40), ",")
	path := writeFile(t, dir, "wide.csv", "number,requested_for.email\nRITM1,"+fields+"\nRITM2,b@example.com\n")
	out := readCSV(t, CSVOptions{MaxFieldBytes: 100}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if got, want := out.problems(), []string{"wide.csv:2  record_too_large"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if got, want := out.where(), []string{"wide.csv:3 RITM2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// TestReadCSVHugeFieldBoundedMemory feeds a 24 MB quoted field spread over
// many lines, with a 64 KiB field limit: the reader must not buffer it
// (encoding/csv alone would hold all of it), so the bytes allocated follow
// the limit, not the field's size.
func TestReadCSVHugeFieldBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 24 MB")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "huge.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("number,requested_for.name,requested_for.email\nRITM1,\"")
	line := strings.Repeat("z", 1999) + "\n"
	for i := 0; i < 12_000; i++ {
		w.WriteString(line)
	}
	w.WriteString("\",a@example.com\nRITM2,Bob,b@example.com\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out := readCSV(t, CSVOptions{MaxFieldBytes: 64 << 10}, path)
	runtime.ReadMemStats(&after)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if got, want := out.problems(), []string{"huge.csv:2 requested_for.name field_too_large"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if got, want := out.where(), []string{"huge.csv:12003 RITM2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d KiB reading a 24 MB field; it should be bounded by the 64 KiB limit", alloc>>10)
	}
}

func TestReadCSVEmitErrorStops(t *testing.T) {
	before := runtime.NumGoroutine()
	defer func() {
		// gocsv's goroutine is stopped, not left blocked on its channel
		for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d goroutines after ReadCSV, %d before", n, before)
		}
	}()
	stop := errors.New("enough")
	calls := 0
	// more rows than gocsv's channel buffers, so that its goroutine would block
	path := writeRows(t, t.TempDir(), "rows.csv", 2000)
	_, err := ReadCSV(context.Background(), []string{path}, CSVOptions{}, func(r Request) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("err = %v after %d calls, want the emit error after 2", err, calls)
	}
}

func TestReadCSVCancelled(t *testing.T) {
	path := writeRows(t, t.TempDir(), "rows.csv", 5000)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := ReadCSV(ctx, []string{path}, CSVOptions{}, func(r Request) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls >= 5000 {
		t.Errorf("err = %v after %d calls, want context.Canceled before the end", err, calls)
	}
}

// TestReadCSVFileChangedWhileReading changes the second file after it was
// checked and before it is streamed: the second read's hash differs, and the
// file is refused.
func TestReadCSVFileChangedWhileReading(t *testing.T) {
	dir := t.TempDir()
	first := writeRows(t, dir, "a.csv", 2)
	second := writeRows(t, dir, "b.csv", 2)
	out := readOut{}
	out.res, out.err = ReadCSV(context.Background(), []string{first, second}, CSVOptions{}, func(r Request) error {
		if r.Origin.File == first && r.Origin.Line == 2 {
			return os.WriteFile(second, []byte("number,requested_for.email\nRITM0000009,other@example.com\n"), 0o600)
		}
		return nil
	})
	if !errors.Is(out.err, ErrRefused) || !strings.Contains(out.err.Error(), "b.csv: the file changed while it was being read") {
		t.Errorf("err = %v", out.err)
	}
	if len(out.res.Files) != 2 || out.res.Files[1].Refused != "the file changed while it was being read" {
		t.Errorf("files %+v", out.res.Files)
	}
}

func TestReadCSVUnnamedColumnWarning(t *testing.T) {
	path := writeFile(t, t.TempDir(), "trailing.csv", "number,requested_for.email,\nRITM1,a@example.com,\n")
	out := readCSV(t, CSVOptions{}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.res.Warnings) != 1 || !strings.HasSuffix(out.res.Warnings[0], "trailing.csv: column 3 has no header; its values are ignored") {
		t.Errorf("warnings %q", out.res.Warnings)
	}
	if len(out.reqs) != 1 || !reflect.DeepEqual(out.reqs[0].Fields, map[string]string{"number": "RITM1", "requested_for.email": "a@example.com"}) {
		t.Errorf("records %+v", out.reqs)
	}
}

// TestSampleCSV pins what the demo and its seed rely on in sample.csv.
func TestSampleCSV(t *testing.T) {
	out := readCSV(t, CSVOptions{}, filepath.Join("..", "sample.csv"))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.reqs) != 25 || len(out.res.Problems) != 0 || out.res.Files[0].Encoding != "utf-8" {
		t.Fatalf("%d records, problems %v, file %+v", len(out.reqs), out.res.Problems, out.res.Files[0])
	}
	if !reflect.DeepEqual(out.res.Files[0].Columns, defaultColumns) {
		t.Errorf("columns %q", out.res.Files[0].Columns)
	}
	raw, err := os.ReadFile(filepath.Join("..", "sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(raw), "\r\n") != strings.Count(string(raw), "\n") {
		t.Error("sample.csv should use CRLF throughout")
	}
	approval := map[string]int{}
	approvedUsers := map[string]bool{}
	groups := map[string]bool{}
	for _, r := range out.reqs {
		approval[r.Get("approval")]++
		groups[r.Get("variables.duo_group")] = true
		if r.Get("approval") == "Approved" && r.Get("state") != "Closed Incomplete" {
			approvedUsers[r.Get("requested_for.user_name")] = true
		}
	}
	want := map[string]int{"Approved": 13, "Requested": 6, "Rejected": 4, "Not Yet Requested": 2}
	if !reflect.DeepEqual(approval, want) {
		t.Errorf("approval counts %v, want %v", approval, want)
	}
	if len(approvedUsers) != 10 || !approvedUsers["mgarcia"] || !approvedUsers["tbaker"] || !approvedUsers["lwei"] {
		t.Errorf("approved users %v", approvedUsers)
	}
	if len(groups) != 3 || !groups["MFA Users"] || !groups["VPN Users"] || !groups["Finance Apps"] {
		t.Errorf("groups %v", groups)
	}
	byNumber := map[string]Request{}
	for _, r := range out.reqs {
		byNumber[r.Number()] = r
	}
	if got := byNumber["RITM0010002"].Get("requested_for.name"); got != "Nguyen, Thi" {
		t.Errorf("quoted name: %q", got)
	}
	if got := byNumber["RITM0010003"].Get("requested_for.name"); got != "José Álvarez" {
		t.Errorf("accented name: %q", got)
	}
	if got := byNumber["RITM0010011"].Get("requested_for.email"); got != "li.wei@example" {
		t.Errorf("invalid email row: %q", got)
	}
}

func TestCanonicalFieldLabels(t *testing.T) {
	for in, want := range map[string]string{
		"Requested for.Email":          "requested_for.email",
		"Requested for.User ID":        "requested_for.user_name",
		" Number ":                     "number",
		"Item":                         "cat_item",
		"Short description":            "short_description",
		"Request.Requested for.E-mail": "request.requested_for.email",
		"variables.Duo_Group":          "variables.duo_group",
		"requested_for.email":          "requested_for.email",
		"Sys ID":                       "sys_id",
	} {
		if got := CanonicalField(in); got != want {
			t.Errorf("CanonicalField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadCSVLargeBlankFile(t *testing.T) {
	// bigger than the head that looksLike sees: found empty by the header read
	path := writeFile(t, t.TempDir(), "blank.csv", strings.Repeat("\r\n", 40000))
	out := readCSV(t, CSVOptions{}, path)
	if !errors.Is(out.err, ErrRefused) || out.res.Files[0].Refused != "an empty file (no header line)" {
		t.Errorf("err %v, files %+v", out.err, out.res.Files)
	}
}

// TestScanFileChunkBoundaries puts multi-byte characters across the scan's
// chunk boundary (valid), and an invalid byte beyond the first chunk.
func TestScanFileChunkBoundaries(t *testing.T) {
	for shift := 0; shift < 4; shift++ {
		pad := strings.Repeat("a", scanChunk-shift)
		for _, ch := range []string{"é", "€", "😀"} {
			data := pad + ch + "\n" + ch
			s, err := scanFile(context.Background(), strings.NewReader(data), false)
			if err != nil || s.invalidUTF8 != -1 || s.size != int64(len(data)) {
				t.Errorf("shift %d %q: invalid at %d, size %d, err %v", shift, ch, s.invalidUTF8, s.size, err)
			}
		}
		data := pad + "\n\nb\xe9c"
		s, _ := scanFile(context.Background(), strings.NewReader(data), false)
		if want := int64(len(pad) + 3); s.invalidUTF8 != want || s.invalidLine != 3 {
			t.Errorf("shift %d: invalid at %d line %d, want %d line 3", shift, s.invalidUTF8, s.invalidLine, want)
		}
	}
}

func TestReadCSVMixedCharsetForced(t *testing.T) {
	// Forcing a charset is the way out of a mixed file: the admin chose it,
	// and the UTF-8 part is decoded as Windows-1252 like the rest.
	path := writeFile(t, t.TempDir(), "mixed.csv", "number,requested_for.name\nRITM1,Zo\xc3\xab\nRITM2,M\xfcller\n")
	out := readCSV(t, CSVOptions{}, path)
	if !errors.Is(out.err, ErrRefused) || !strings.HasPrefix(out.res.Files[0].Refused, "mixed charsets: line 2 holds UTF-8 text but line 3") {
		t.Fatalf("detected: err %v, files %+v", out.err, out.res.Files)
	}
	out = readCSV(t, CSVOptions{Encoding: "windows-1252"}, path)
	if out.err != nil || len(out.reqs) != 2 {
		t.Fatalf("forced: err %v, %d records", out.err, len(out.reqs))
	}
	if a, b := out.reqs[0].Get("requested_for.name"), out.reqs[1].Get("requested_for.name"); a != "ZoÃ«" || b != "Müller" {
		t.Errorf("forced: %q, %q", a, b)
	}
	// and José Álvarez holds 0x81 in UTF-8, which Windows-1252 does not have
	out = readCSV(t, CSVOptions{Encoding: "windows-1252"}, fixture("mixed_encoding.csv"))
	if !errors.Is(out.err, ErrRefused) || !strings.Contains(out.res.Files[0].Refused, "holds byte 0x81") {
		t.Errorf("forced on 0x81: err %v", out.err)
	}
}

func TestFileInfoHasColumn(t *testing.T) {
	out := readCSV(t, CSVOptions{}, fixture("labels.csv"))
	fi := out.res.Files[0]
	for name, want := range map[string]bool{
		"requested_for.email": true, "Requested for.Email": true, "variables.duo_group": true,
		"requested_for.active": false, "Requested for.Active": false,
	} {
		if got := fi.HasColumn(name); got != want {
			t.Errorf("HasColumn(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestReadCSVSemicolonWithCommaInLabel(t *testing.T) {
	path := writeFile(t, t.TempDir(), "semi.csv", "Number;Requested for.Name, full;Approval\nRITM1;Ann, B;Approved\n")
	out := readCSV(t, CSVOptions{}, path)
	if !errors.Is(out.err, ErrRefused) || !strings.HasPrefix(out.res.Files[0].Refused, `a semicolon-delimited file (header "Number;Requested for.Name, full;Approval")`) {
		t.Errorf("err %v, files %+v", out.err, out.res.Files)
	}
}

func TestReadCSVTabDelimited(t *testing.T) {
	path := writeFile(t, t.TempDir(), "tabs.csv", "number\tsys_id\nRITM1\tabc\n")
	out := readCSV(t, CSVOptions{}, path)
	if !errors.Is(out.err, ErrRefused) || !strings.HasPrefix(out.res.Files[0].Refused, "a tab-delimited file") {
		t.Errorf("err %v, files %+v", out.err, out.res.Files)
	}
}

func TestReadCSVMaxProblems(t *testing.T) {
	out := readCSV(t, CSVOptions{MaxProblems: 2}, fixture("bad_rows.csv"))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if got, want := out.problems(), []string{"bad_rows.csv:3  wrong_field_count", "bad_rows.csv:4  bad_quoting"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if out.res.MoreProblems != 2 || len(out.res.Warnings) != 1 || out.res.Warnings[0] != "2 more invalid rows not listed (only the first 2 are kept)" {
		t.Errorf("MoreProblems %d, warnings %q", out.res.MoreProblems, out.res.Warnings)
	}
	if len(out.reqs) != 2 {
		t.Errorf("%d records, want 2", len(out.reqs))
	}
}

func TestReadCSVRepeatedHeader(t *testing.T) {
	out := readCSV(t, CSVOptions{}, fixture("concatenated.csv"))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.res.Problems) != 1 || out.res.Problems[0].Error() !=
		"testdata/csv/concatenated.csv:4: a second header row at line 4: two exports concatenated? skipped; the rows after it are read" {
		t.Errorf("problems %q", out.res.Problems)
	}

	// A second header with the columns in another order: the rows after it
	// would be read into the wrong fields, so the file is refused.
	dir := t.TempDir()
	path := writeFile(t, dir, "other.csv", "number,requested_for.email,requested_for.user_name\n"+
		"RITM1,a@example.com,a\n\ufeffnumber,requested_for.user_name,requested_for.email\nRITM2,b,b@example.com\n")
	out = readCSV(t, CSVOptions{}, path)
	want := "line 3 is the header of another export, with other columns than line 1's: two different exports concatenated?"
	if !errors.Is(out.err, ErrRefused) || !strings.Contains(out.err.Error(), path+": "+want) ||
		!strings.HasPrefix(out.res.Files[0].Refused, want) {
		t.Errorf("err %v, files %+v", out.err, out.res.Files)
	}
	if got := out.where(); !reflect.DeepEqual(got, []string{"other.csv:2 RITM1"}) {
		t.Errorf("records %q: only the rows before the second header may have been emitted", got)
	}

	// "number" in a number column that is not the first one, in a Windows-1252
	// file (where a UTF-8 BOM decodes as "ï»¿"): still a header row.
	path = writeFile(t, dir, "w1252.csv", "sys_id,Number,requested_for.name\n1,RITM1,M\xfcller\n\xef\xbb\xbfsys_id,number,Requested for.Name\n2,RITM2,B\n")
	out = readCSV(t, CSVOptions{Encoding: "windows-1252"}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if got, want := out.problems(), []string{"w1252.csv:3  repeated_header"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if got, want := out.where(), []string{"w1252.csv:2 RITM1", "w1252.csv:4 RITM2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

func TestReadCSVCROnlyLineEndings(t *testing.T) {
	out := readCSV(t, CSVOptions{}, fixture("cr_only.csv"))
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.res.Warnings) != 1 || !strings.HasPrefix(out.res.Warnings[0],
		"testdata/csv/cr_only.csv: CR-only line endings (classic Mac OS, as Excel for Mac's \"CSV (Macintosh)\" writes them)") {
		t.Errorf("warnings %q", out.res.Warnings)
	}
	raw, err := os.ReadFile(fixture("cr_only.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); out.res.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 %s is not the hash of the file's own bytes", out.res.Files[0].SHA256)
	}

	// The refusals that name a line count CR-terminated lines too.
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"number,requested_for.name\rRITM1,a\rRITM2,\x81\r", "invalid text: line 3 (byte offset 40) holds byte 0x81"},
		{"number,requested_for.name\rRITM1,a\rRITM2,\"open\rRITM3,c\r", "a quoted field opened at line 3 is never closed: lines 3 to 4"},
	} {
		path := writeFile(t, dir, "cr.csv", tc.content)
		out := readCSV(t, CSVOptions{}, path)
		if !errors.Is(out.err, ErrRefused) || !strings.HasPrefix(out.res.Files[0].Refused, tc.want) {
			t.Errorf("%q: err %v\nwant refused as %q", tc.content, out.err, tc.want)
		}
	}
}

// TestCRToLF reads one byte at a time, so that every CR is judged by a
// byte the reader has not read yet.
func TestCRToLF(t *testing.T) {
	for in, want := range map[string]string{
		"a\rb\r\nc\r\rd\r": "a\nb\r\nc\n\nd\n",
		"\r\n\r":           "\r\n\n",
		"no line end":      "no line end",
	} {
		r := newCRToLF(iotest.OneByteReader(strings.NewReader(in)))
		var got []byte
		var b [1]byte
		for {
			n, err := r.Read(b[:])
			got = append(got, b[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != want {
			t.Errorf("%q read as %q, want %q", in, got, want)
		}
	}
	for head, want := range map[string]bool{
		"number,sys_id\rRITM1": true, "\ufeffnumber\rRITM1": true,
		"number\r\nRITM1": false, "number\nRITM1\r": false, "number\r": false, "number": false,
	} {
		if got := crLineEndings([]byte(head)); got != want {
			t.Errorf("crLineEndings(%q) = %v", head, got)
		}
	}
}

// TestReadCSVColumnLimits checks the bounds on the header and on the
// fields of a record, and that a huge header is refused with memory
// following the bounds, not the line.
func TestReadCSVColumnLimits(t *testing.T) {
	dir := t.TempDir()
	columns := func(n int) string {
		var b strings.Builder
		b.WriteString("number")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, ",c%d", i)
		}
		return b.String()
	}
	// exactly MaxColumns is an export
	path := writeFile(t, dir, "max.csv", columns(MaxColumns)+"\nRITM1"+strings.Repeat(",x", MaxColumns-1)+"\n")
	if out := readCSV(t, CSVOptions{}, path); out.err != nil || len(out.reqs) != 1 || len(out.res.Files[0].Columns) != MaxColumns {
		t.Errorf("%d columns: err %v, %d records", MaxColumns, out.err, len(out.reqs))
	}
	for _, tc := range []struct{ header, want string }{
		{columns(MaxColumns + 1), "the first line has more than 2000 columns: not the header of a ServiceNow export"},
		{"number,requested_for.email," + strings.Repeat("x", MaxHeaderBytes), "the first line is longer than 262144 bytes"},
	} {
		path := writeFile(t, dir, "wide.csv", tc.header+"\nRITM1,a,b\n")
		out := readCSV(t, CSVOptions{}, path)
		if !errors.Is(out.err, ErrRefused) || !strings.HasPrefix(out.res.Files[0].Refused, tc.want) {
			t.Errorf("err %v, want refused as %q", out.err, tc.want)
		}
	}
	// a small field limit bounds the header below MaxHeaderBytes
	path = writeFile(t, dir, "field.csv", "number,"+strings.Repeat("y", 200)+"\nRITM1,a\n")
	if out := readCSV(t, CSVOptions{MaxFieldBytes: 100}, path); !errors.Is(out.err, ErrRefused) ||
		out.res.Files[0].Refused != "column 2 of the first line is longer than 100 bytes: not the header of a CSV export" {
		t.Errorf("err %v", out.err)
	}

	// a data row of too many fields is a wrong field count, cut at the bound
	path = writeFile(t, dir, "row.csv", "number,requested_for.email,requested_for.name\n"+
		"RITM1"+strings.Repeat(",x", 3*MaxColumns)+"\nRITM2,b@example.com,B\n")
	out := readCSV(t, CSVOptions{}, path)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(out.res.Problems) != 1 || out.res.Problems[0].Error() != path+":2: the record has more than 2000 fields, the header has 3; skipped" {
		t.Errorf("problems %q", out.res.Problems)
	}
	if got, want := out.where(), []string{"row.csv:3 RITM2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}

	// a million columns (7 MB) refused within a few MB of allocations
	path = filepath.Join(dir, "million.csv")
	if err := os.WriteFile(path, []byte(columns(1_000_000)+"\nRITM1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out = readCSV(t, CSVOptions{}, path)
	runtime.ReadMemStats(&after)
	if !errors.Is(out.err, ErrRefused) {
		t.Fatalf("err %v", out.err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d KiB refusing a header of a million columns; it should follow the bounds", alloc>>10)
	}
}
