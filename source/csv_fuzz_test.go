package source

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzReadCSV feeds any bytes to ReadCSV: it must never panic, and what it
// returns must add up: every data row is emitted, a duplicate or a problem;
// problems and records carry real line numbers; values are valid UTF-8.
func FuzzReadCSV(f *testing.F) {
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "csv", "*.csv"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "export.csv")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// a bare CR ends a line too in a file with CR-only line endings
		lines := bytes.Count(data, []byte{'\n'}) + bytes.Count(data, []byte{'\r'}) + 1
		for _, opts := range []CSVOptions{{}, {MaxFieldBytes: 8, Encoding: "windows-1252"}} {
			emitted, lastLine := 0, 0
			res, err := ReadCSV(context.Background(), []string{path}, opts, func(r Request) error {
				emitted++
				if r.Origin.Line <= lastLine || r.Origin.Line < 2 || r.Origin.Line > lines {
					t.Fatalf("record line %d after %d (file has %d lines)", r.Origin.Line, lastLine, lines)
				}
				lastLine = r.Origin.Line
				if r.Number() == "" {
					t.Fatalf("record without a number emitted: %q", r.Fields)
				}
				for k, v := range r.Fields {
					if !utf8.ValidString(k) || !utf8.ValidString(v) {
						t.Fatalf("invalid UTF-8 in %q=%q", k, v)
					}
				}
				return nil
			})
			if len(res.Files) != 1 {
				t.Fatalf("files %+v, err %v", res.Files, err)
			}
			fi := res.Files[0]
			if err != nil {
				if !errors.Is(err, ErrRefused) || fi.Refused == "" {
					t.Fatalf("error %v, refused %q: a bad file must be refused with a reason", err, fi.Refused)
				}
				continue
			}
			if fi.Refused != "" {
				t.Fatalf("refused %q without an error", fi.Refused)
			}
			if res.Requests != emitted || fi.Rows != emitted+res.Duplicates+len(res.Problems)+res.MoreProblems {
				t.Fatalf("rows %d != emitted %d + duplicates %d + problems %d + %d", fi.Rows, emitted, res.Duplicates, len(res.Problems), res.MoreProblems)
			}
			conflicts := 0
			for _, p := range res.Problems {
				if p.Reason == ReasonConflict {
					conflicts++
				}
			}
			if len(res.Conflicts) > conflicts || (conflicts > 0) != (len(res.Conflicts) > 0) {
				t.Fatalf("%d conflict problems, Conflicts %q", conflicts, res.Conflicts)
			}
			for _, p := range res.Problems {
				if p.Line < 2 || p.Line > lines || p.Reason == "" || p.Detail == "" || p.File != path {
					t.Fatalf("problem %+v (file has %d lines)", p, lines)
				}
			}
		}
	})
}

// FuzzLimiter checks the limiter on any bytes: without limits it passes
// input through unchanged; with tiny limits it keeps every newline, so
// encoding/csv's line numbers stay right, and adds at most closing quotes.
func FuzzLimiter(f *testing.F) {
	f.Add([]byte("a,b\n\"x\ny\",z\n"), 3)
	f.Add([]byte("\"unterminated\n,,\n"), 1)
	f.Add([]byte("a,\"b\"\"c\",d\r\ne,f\"g,h\n"), 2)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		out, err := io.ReadAll(newLimiter(bytes.NewReader(data), math.MaxInt, math.MaxInt))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("without limits: %q, err %v; want the input %q", out, err, data)
		}
		if limit < 1 || limit > 64 {
			limit = 1 + int(uint(limit)%64)
		}
		l := newLimiter(iotestHalf{bytes.NewReader(data)}, limit, limit*recordLimitFactor)
		out, err = io.ReadAll(l)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := bytes.Count(out, []byte{'\n'}), bytes.Count(data, []byte{'\n'}); got != want {
			t.Fatalf("limit %d: %d newlines out, %d in\nin  %q\nout %q", limit, got, want, data, out)
		}
		if len(out) > len(data)+bytes.Count(data, []byte{'\n'})+1 {
			t.Fatalf("limit %d: output longer than input plus closing quotes: %q", limit, out)
		}
	})
}

// FuzzLexerAgreesWithCSV checks that the lexer (the limiter's state
// machine) starts records on the same lines as csv.Reader: the limiter's cuts
// are keyed by those lines, and phase 1 trusts it to find unclosed quotes.
func FuzzLexerAgreesWithCSV(f *testing.F) {
	f.Add([]byte("a,b\n\"x\ny\",z\n\n\r\nq\n"))
	f.Add([]byte("\r\"abc\ndef\"\n1,2\n"))
	f.Add([]byte("\"abc\"\r,\"x\ny\"\nz\n"))
	f.Add([]byte("a,x\"y,\"b\nc\",d\r\r\ne\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []int
		cr := csv.NewReader(bytes.NewReader(data))
		cr.FieldsPerRecord = -1
		for {
			_, err := cr.Read()
			if err == io.EOF {
				break
			}
			var pe *csv.ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatal(err)
			}
			want = append(want, recordLine(cr, err))
		}
		var got []int
		lex := newLexer()
		for _, c := range data {
			before := lex.recStart
			lex.step(c)
			if before == 0 && lex.recStart != 0 {
				got = append(got, lex.recStart)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("records start on lines %v, csv.Reader says %v\ninput %q", got, want, data)
		}
	})
}

// iotestHalf returns at most half the requested bytes per Read, to exercise
// the limiter's buffering.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:len(p)/2]
	}
	return h.r.Read(p)
}
