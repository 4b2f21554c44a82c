package sntest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The encoded-query subset the emulator understands: conditions joined by ^
// (AND), ^OR (OR, binding tighter than AND) and ^NQ (a new OR'd query), plus
// ORDERBY / ORDERBYDESC. As on ServiceNow, a condition on an unknown field is
// silently ignored.

type cond struct {
	field, op, value string
	set              map[string]bool // the values of IN / NOT IN, split once
}

// query is (OR of) AND-groups of OR-clauses, and the sort order.
type query struct {
	nq    [][][]cond // ^NQ sections -> ^ terms -> ^OR alternatives
	order []orderBy
}

type orderBy struct {
	field string
	desc  bool
}

// Longest operators first, so that "NOT IN" wins over "IN" and ">=" over ">".
var operators = []string{"NOT LIKE", "NOT IN", "STARTSWITH", "ENDSWITH", "ISNOTEMPTY", "ISEMPTY",
	"ANYTHING", "BETWEEN", "SAMEAS", "LIKE", "IN", "!=", ">=", "<=", "=", ">", "<"}

// Field names on an instance are lower case; operators are upper case or symbols.
var fieldName = regexp.MustCompile(`^[a-z0-9_.]+`)

var dateGenerate = regexp.MustCompile(`^javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})','(\d{2}:\d{2}:\d{2})'\)$`)

// splitTerms splits on ^, keeping "^^" as a literal caret inside a value.
func splitTerms(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '^' {
			if i+1 < len(s) && s[i+1] == '^' {
				cur.WriteByte('^')
				i++
				continue
			}
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(out, cur.String())
}

func parseQuery(s string) (query, error) {
	var q query
	section := [][]cond{}
	for _, term := range splitTerms(s) {
		switch {
		case term == "" || term == "EQ":
			continue
		case strings.HasPrefix(term, "ORDERBYDESC"):
			q.order = append(q.order, orderBy{field: strings.TrimPrefix(term, "ORDERBYDESC"), desc: true})
			continue
		case strings.HasPrefix(term, "ORDERBY"):
			q.order = append(q.order, orderBy{field: strings.TrimPrefix(term, "ORDERBY")})
			continue
		case strings.HasPrefix(term, "NQ"):
			q.nq = append(q.nq, section)
			section = [][]cond{}
			term = strings.TrimPrefix(term, "NQ")
			if term == "" {
				continue
			}
		}
		or := strings.HasPrefix(term, "OR") && len(section) > 0
		if or {
			term = strings.TrimPrefix(term, "OR")
		}
		c, err := parseCond(term)
		if err != nil {
			return query{}, err
		}
		if or {
			section[len(section)-1] = append(section[len(section)-1], c)
		} else {
			section = append(section, []cond{c})
		}
	}
	q.nq = append(q.nq, section)
	return q, nil
}

func parseCond(term string) (cond, error) {
	field := fieldName.FindString(term)
	if field == "" {
		return cond{}, fmt.Errorf("cannot parse query term %q", term)
	}
	rest := term[len(field):]
	for _, op := range operators {
		if strings.HasPrefix(rest, op) {
			v := rest[len(op):]
			if m := dateGenerate.FindStringSubmatch(v); m != nil {
				v = m[1] + " " + m[2]
			}
			c := cond{field: field, op: op, value: v}
			if op == "IN" || op == "NOT IN" {
				c.set = map[string]bool{}
				for _, x := range strings.Split(v, ",") {
					c.set[x] = true
				}
			}
			return c, nil
		}
	}
	return cond{}, fmt.Errorf("unknown operator in query term %q", term)
}

// match reports whether a row satisfies the query. get returns a field's raw
// value and whether the field exists.
func (q query) match(get func(string) (string, bool)) bool {
	for _, section := range q.nq {
		if sectionMatch(section, get) {
			return true
		}
	}
	return false
}

func sectionMatch(section [][]cond, get func(string) (string, bool)) bool {
	for _, alts := range section {
		ok := false
		for _, c := range alts {
			v, known := get(c.field)
			if !known || c.eval(v) { // unknown fields are ignored, as on ServiceNow
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c cond) eval(v string) bool {
	lower := func() (string, string) { return strings.ToLower(v), strings.ToLower(c.value) }
	switch c.op {
	case "=":
		return v == c.value
	case "!=":
		return v != c.value
	case "IN":
		return c.set[v]
	case "NOT IN":
		return !c.set[v]
	case "LIKE":
		lv, lc := lower()
		return strings.Contains(lv, lc)
	case "NOT LIKE":
		lv, lc := lower()
		return !strings.Contains(lv, lc)
	case "STARTSWITH":
		lv, lc := lower()
		return strings.HasPrefix(lv, lc)
	case "ENDSWITH":
		lv, lc := lower()
		return strings.HasSuffix(lv, lc)
	case "ISEMPTY":
		return v == ""
	case "ISNOTEMPTY":
		return v != ""
	case "ANYTHING":
		return true
	case "BETWEEN":
		lo, hi, _ := strings.Cut(c.value, "@")
		return compare(v, lo) >= 0 && compare(v, hi) <= 0
	case ">=":
		return compare(v, c.value) >= 0
	case ">":
		return compare(v, c.value) > 0
	case "<=":
		return compare(v, c.value) <= 0
	case "<":
		return compare(v, c.value) < 0
	}
	return false // SAMEAS and the like: not emulated
}

// compare orders numbers numerically (state codes) and everything else as
// strings, which is right for ServiceNow's "YYYY-MM-DD HH:MM:SS" dates.
func compare(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		return cmpFloat(fa, fb)
	}
	return strings.Compare(a, b)
}

// sortRows orders rows by the query's ORDERBY terms; rows equal on all of
// them keep their insertion order. Sort keys are computed once per row.
func (q query) sortRows(rows []map[string]string, get func(row map[string]string, field string) string) {
	if len(q.order) == 0 {
		return
	}
	type key struct {
		s   string
		f   float64
		num bool
	}
	type decorated struct {
		row  map[string]string
		keys []key
	}
	ds := make([]decorated, len(rows))
	for i, r := range rows {
		ds[i] = decorated{row: r, keys: make([]key, len(q.order))}
		for j, o := range q.order {
			v := get(r, o.field)
			f, err := strconv.ParseFloat(v, 64)
			ds[i].keys[j] = key{s: v, f: f, num: err == nil}
		}
	}
	sort.SliceStable(ds, func(a, b int) bool {
		for j, o := range q.order {
			ka, kb := ds[a].keys[j], ds[b].keys[j]
			c := strings.Compare(ka.s, kb.s)
			if ka.num && kb.num {
				c = cmpFloat(ka.f, kb.f)
			}
			if c == 0 {
				continue
			}
			return (c < 0) != o.desc
		}
		return false
	})
	for i := range ds {
		rows[i] = ds[i].row
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
