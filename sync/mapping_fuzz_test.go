package sync

import (
	"strings"
	"testing"

	"github.com/duosync/duosync/source"
)

// FuzzTemplate checks the {column} placeholder templates against an
// independent reading of their grammar: any text parses exactly when its
// braces are balanced, unnested and non-empty; a parsed template prints
// back to its text; and rendering substitutes each placeholder once,
// without expanding braces that come from the data. `go test` runs the
// seeds (here and in testdata/fuzz/); `go test -fuzz FuzzTemplate ./sync`
// explores.
func FuzzTemplate(f *testing.F) {
	f.Add(`GLOBAL\{requested_for.user_name}`, "jdoe", false)
	f.Add("{requested_for.email}", " a@b.co ", false)
	f.Add("{Requested for.Email}", "{number}", false)
	f.Add("{number}-{state} {x}", "v", true)
	f.Add("{", "", false)
	f.Add("}", "", false)
	f.Add("{}", "", false)
	f.Add("{ }", "", false)
	f.Add("{a{b}}", "", false)
	f.Add("a}b{c", "", false)
	f.Add("{a}{b}", "{a}", false)
	f.Add("  {a}  ", "\x00\xff", false)
	f.Add("{İ.Ǆ}", "x", false)
	f.Add("plain text, no placeholder", "x", false)
	f.Fuzz(func(t *testing.T, text, value string, dropOne bool) {
		const key = "mapping.alias3"
		tpl, err := parseTemplate(key, text)
		if wantOK := balanced(text); (err == nil) != wantOK {
			t.Fatalf("%q: parse error %v, but the grammar says valid=%v", text, err, wantOK)
		}
		m := DefaultMapping()
		m.Alias3 = text
		if verr := m.Validate(); (verr == nil) != (err == nil) {
			t.Fatalf("%q: Validate %v but parseTemplate %v", text, verr, err)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), key+": ") {
				t.Fatalf("%q: error %q does not start with the config key", text, err)
			}
			return
		}

		// Round trip: the parts print back to the text.
		var back strings.Builder
		for _, p := range tpl.parts {
			if p.field == "" {
				back.WriteString(p.literal)
			} else {
				back.WriteString("{" + p.raw + "}")
				if p.field != source.CanonicalField(p.raw) {
					t.Fatalf("%q: placeholder %q has field %q, want %q", text, p.raw, p.field, source.CanonicalField(p.raw))
				}
				if again := source.CanonicalField(p.field); again != p.field {
					t.Fatalf("CanonicalField is not idempotent: %q -> %q -> %q", p.raw, p.field, again)
				}
			}
		}
		if back.String() != text {
			t.Fatalf("%q prints back as %q", text, back.String())
		}

		// Rendering: every placeholder's column holds value.
		r := source.Request{Fields: map[string]string{}}
		fields := tpl.fields()
		for _, fl := range fields {
			r.Fields[fl] = value
		}
		if dropOne && len(fields) > 0 {
			delete(r.Fields, fields[len(fields)-1])
		}
		got := tpl.render(r)
		if want := expectRender(tpl, value, dropOne); got != want {
			t.Fatalf("%q with value %q (drop %v): rendered %q, want %q", text, value, dropOne, got, want)
		}
	})
}

// balanced is the template grammar restated: '{' opens a placeholder that
// the next brace must close with '}', with non-blank text between; a '}'
// outside a placeholder is an error.
func balanced(text string) bool {
	open := -1
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '{':
			if open >= 0 {
				return false
			}
			open = i
		case '}':
			if open < 0 || strings.TrimSpace(text[open+1:i]) == "" {
				return false
			}
			open = -1
		}
	}
	return open < 0
}

// expectRender is what render must give when every placeholder reads value
// (or, with dropOne, when the last one's column is absent): the text with
// each placeholder replaced by the trimmed value, trimmed, or "" when any
// placeholder is empty.
func expectRender(tpl template, value string, dropOne bool) string {
	v := strings.TrimSpace(value)
	n := len(tpl.fields())
	if n > 0 && (v == "" || dropOne) {
		return ""
	}
	var b strings.Builder
	for _, p := range tpl.parts {
		if p.field == "" {
			b.WriteString(p.literal)
		} else {
			b.WriteString(v)
		}
	}
	return strings.TrimSpace(b.String())
}
