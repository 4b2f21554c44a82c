package sntest

import (
	"sort"
	"strings"
)

// table is one emulated ServiceNow table: its schema (which fields exist,
// which are references, choices or journal fields) and its rows of raw values.
type table struct {
	name    string
	display string            // the display field, used as a reference's display value
	fields  map[string]bool   // known fields; unknown ones are ignored like ServiceNow does
	refs    map[string]string // reference field -> referenced table
	choices map[string]map[string]string
	journal map[string]bool // journal fields (work_notes, comments): write-only, read back as ""

	rows []map[string]string
	byID map[string]int // sys_id -> index in rows
}

func newTable(name, display string, fields []string) *table {
	t := &table{
		name: name, display: display,
		fields:  map[string]bool{},
		refs:    map[string]string{},
		choices: map[string]map[string]string{},
		journal: map[string]bool{},
		byID:    map[string]int{},
	}
	for _, f := range fields {
		t.fields[f] = true
	}
	return t
}

func (t *table) ref(field, target string) *table {
	t.fields[field] = true
	t.refs[field] = target
	return t
}

func (t *table) insert(row map[string]string) {
	t.byID[row["sys_id"]] = len(t.rows)
	t.rows = append(t.rows, row)
}

func (t *table) get(sysID string) map[string]string {
	i, ok := t.byID[sysID]
	if !ok {
		return nil
	}
	return t.rows[i]
}

// The RITM choice lists, as an out-of-the-box instance labels them.
var (
	approvalLabels = map[string]string{
		"not requested": "Not Yet Requested", "requested": "Requested", "approved": "Approved",
		"rejected": "Rejected", "cancelled": "Cancelled", "not_required": "No Longer Required",
		"skipped": "Skipped",
	}
	stateLabels = map[string]string{
		"-5": "Pending", "1": "Open", "2": "Work in Progress", "3": "Closed Complete",
		"4": "Closed Incomplete", "7": "Closed Skipped",
	}
)

// db is the emulator's instance: the tables it serves and an index of the
// catalog variables per RITM (what sc_item_option_mtom links).
type db struct {
	tables map[string]*table
	vars   map[string]map[string]string // ritm sys_id -> variable name -> value
}

func newDB() *db {
	d := &db{tables: map[string]*table{}, vars: map[string]map[string]string{}}
	add := func(t *table) *table { d.tables[t.name] = t; return t }

	add(newTable("sys_user", "name", []string{"sys_id", "user_name", "first_name", "last_name", "name",
		"email", "active", "locked_out", "sys_created_on", "sys_updated_on"}))
	add(newTable("sc_cat_item", "name", []string{"sys_id", "name", "active", "sys_created_on", "sys_updated_on"}))
	ritm := add(newTable("sc_req_item", "number", []string{"sys_id", "number", "approval", "state", "active",
		"stage", "short_description", "sys_created_on", "sys_updated_on", "sys_mod_count", "work_notes", "comments"}))
	ritm.ref("cat_item", "sc_cat_item").ref("requested_for", "sys_user").ref("opened_by", "sys_user")
	ritm.choices["approval"] = approvalLabels
	ritm.choices["state"] = stateLabels
	ritm.journal["work_notes"] = true
	ritm.journal["comments"] = true
	add(newTable("item_option_new", "question_text", []string{"sys_id", "name", "question_text", "type"}))
	add(newTable("sc_item_option", "value", []string{"sys_id", "value"})).ref("item_option_new", "item_option_new")
	add(newTable("sc_item_option_mtom", "sys_id", []string{"sys_id"})).
		ref("request_item", "sc_req_item").ref("sc_item_option", "sc_item_option")
	add(newTable("sys_journal_field", "value", []string{"sys_id", "name", "element", "element_id", "value",
		"sys_created_on", "sys_created_by"}))
	return d
}

// resolved is a field's value as found by following a (possibly dot-walked) path.
type resolved struct {
	raw      string
	display  string
	refTable string // non-empty when the last hop is a reference field
	journal  bool
}

// resolve follows a dot-walked field path from a row of t. ok is false for a
// field the schema does not know (ServiceNow silently ignores those).
func (d *db) resolve(t *table, row map[string]string, path string) (res resolved, ok bool) {
	head, rest, walk := strings.Cut(path, ".")
	if head == "variables" && t.name == "sc_req_item" && walk {
		v := d.vars[row["sys_id"]][rest]
		return resolved{raw: v, display: v}, true
	}
	if !t.fields[head] {
		return resolved{}, false
	}
	raw := row[head]
	target, isRef := t.refs[head]
	if walk {
		if !isRef {
			return resolved{}, false
		}
		tt := d.tables[target]
		next := tt.get(raw)
		if next == nil {
			// An empty reference: the walked field exists, its value is empty.
			if _, ok := d.resolve(tt, map[string]string{}, rest); !ok {
				return resolved{}, false
			}
			return resolved{}, true
		}
		return d.resolve(tt, next, rest)
	}
	switch {
	case t.journal[head]:
		return resolved{journal: true}, true
	case isRef:
		res = resolved{raw: raw, refTable: target}
		if r := d.tables[target].get(raw); r != nil {
			res.display = r[d.tables[target].display]
		}
		return res, true
	case t.choices[head] != nil:
		label, found := t.choices[head][raw]
		if !found {
			label = raw
		}
		return resolved{raw: raw, display: label}, true
	}
	return resolved{raw: raw, display: raw}, true
}

// shape renders one field as the Table API does for a display-value mode and
// exclude_reference_link setting (servicenow.md §1).
func shape(res resolved, mode string, excl bool, link string) any {
	if res.refTable != "" {
		if res.raw == "" {
			return "" // an empty reference is "", not an object
		}
		switch mode {
		case "true":
			if excl {
				return res.display
			}
			return map[string]string{"display_value": res.display, "link": link}
		case "all":
			if excl {
				return map[string]string{"display_value": res.display, "value": res.raw}
			}
			return map[string]string{"display_value": res.display, "link": link, "value": res.raw}
		default:
			if excl {
				return res.raw
			}
			return map[string]string{"link": link, "value": res.raw}
		}
	}
	if res.journal {
		res = resolved{} // journal fields read back as "" (the entries live in sys_journal_field)
	}
	switch mode {
	case "true":
		return res.display
	case "all":
		return map[string]string{"display_value": res.display, "value": res.raw}
	}
	return res.raw
}

// allFields lists a table's own fields in a stable order, for a response
// without sysparm_fields.
func (t *table) allFields() []string {
	out := make([]string, 0, len(t.fields))
	for f := range t.fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
