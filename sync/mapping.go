package sync

import (
	"fmt"
	"slices"
	"strings"

	"github.com/duosync/duosync/source"
)

// Mapping says how a request's columns become a Duo user. Every value except
// the groups settings is a template with {column} placeholders; a column may
// be given by its ServiceNow field name ("requested_for.email") or by its
// export label ("Requested for.Email").
//
// A template whose placeholders are all set renders to its text; if any
// placeholder is empty for a request the whole value is empty, so that
// "GLOBAL\{requested_for.user_name}" never becomes a bare "GLOBAL\".
type Mapping struct {
	Username  string `yaml:"username" json:"username"`
	Email     string `yaml:"email" json:"email"`
	Realname  string `yaml:"realname" json:"realname"`
	Firstname string `yaml:"firstname" json:"firstname"`
	Lastname  string `yaml:"lastname" json:"lastname"`
	Alias1    string `yaml:"alias1" json:"alias1"`
	Alias2    string `yaml:"alias2" json:"alias2"`
	Alias3    string `yaml:"alias3" json:"alias3"`
	Alias4    string `yaml:"alias4" json:"alias4"`
	Notes     string `yaml:"notes" json:"notes"`

	// GroupsColumn is the column holding the Duo group a request asks for
	// (a catalog variable); "" for none.
	GroupsColumn string `yaml:"groups_column" json:"groups_column"`
	// GroupsSeparator splits that column into several groups; "" keeps the
	// value whole, because group names may contain commas.
	GroupsSeparator string `yaml:"groups_separator" json:"groups_separator"`
	// GroupsByItem adds groups per catalog item (by name or sys_id).
	GroupsByItem map[string][]string `yaml:"groups_by_item" json:"groups_by_item"`
}

// DefaultMapping reproduces the original per-request scripts: the username
// is the requester's email, alias1 their user_name, alias2 the same with the
// GLOBAL\ domain prefix, and the notes carry the RITM number.
func DefaultMapping() Mapping {
	return Mapping{
		Username:     "{requested_for.email}",
		Email:        "{requested_for.email}",
		Realname:     "{requested_for.name}",
		Firstname:    "{requested_for.first_name}",
		Lastname:     "{requested_for.last_name}",
		Alias1:       "{requested_for.user_name}",
		Alias2:       `GLOBAL\{requested_for.user_name}`,
		Notes:        "{number}",
		GroupsColumn: "variables.duo_group",
	}
}

// Filter selects the catalog items whose requests are provisioned.
type Filter struct {
	// CatalogItems holds catalog item names or sys_ids; empty means every item.
	CatalogItems []string `yaml:"catalog_items" json:"catalog_items"`
}

func (f Filter) allows(catItem string) bool {
	if len(f.CatalogItems) == 0 {
		return true
	}
	v := strings.TrimSpace(catItem)
	for _, item := range f.CatalogItems {
		if strings.EqualFold(strings.TrimSpace(item), v) {
			return true
		}
	}
	return false
}

// template is one parsed mapping value.
type template struct {
	key   string // the config key, for error messages: "mapping.alias2"
	text  string
	parts []templatePart
}

// templatePart is a literal or, when field is set, a placeholder.
type templatePart struct {
	literal string
	field   string // canonical field name
	raw     string // the placeholder as written, for error messages
}

// parseTemplate parses "text {column} text". Braces are not nestable and
// there is no escape: a literal brace is not a valid character in any Duo
// field duosync writes.
func parseTemplate(key, text string) (template, error) {
	t := template{key: key, text: text}
	rest := text
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		if rest[open] == '}' {
			return template{}, fmt.Errorf("%s: unmatched '}' in %q", key, text)
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{literal: rest[:open]})
		}
		rest = rest[open+1:]
		end := strings.IndexAny(rest, "{}")
		if end < 0 || rest[end] == '{' {
			return template{}, fmt.Errorf("%s: unclosed placeholder in %q (a '{' needs a matching '}')", key, text)
		}
		raw := rest[:end]
		if strings.TrimSpace(raw) == "" {
			return template{}, fmt.Errorf("%s: empty placeholder {} in %q", key, text)
		}
		t.parts = append(t.parts, templatePart{field: source.CanonicalField(raw), raw: raw})
		rest = rest[end+1:]
	}
	return t, nil
}

// fields returns the canonical field names the template reads.
func (t template) fields() []string {
	var fs []string
	for _, p := range t.parts {
		if p.field != "" {
			fs = append(fs, p.field)
		}
	}
	return fs
}

// render fills the placeholders from a request. Values are trimmed; an
// empty placeholder empties the whole result (see Mapping).
func (t template) render(r source.Request) string {
	if len(t.parts) == 1 && t.parts[0].field != "" {
		return strings.TrimSpace(lookupField(r, t.parts[0]))
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == "" {
			b.WriteString(p.literal)
			continue
		}
		v := strings.TrimSpace(lookupField(r, p))
		if v == "" {
			return ""
		}
		b.WriteString(v)
	}
	return strings.TrimSpace(b.String())
}

// lookupField finds a placeholder's value by its canonical name, falling
// back to the name as written for sources that keep custom casing.
func lookupField(r source.Request, p templatePart) string {
	if v, ok := r.Fields[p.field]; ok {
		return v
	}
	return r.Fields[strings.TrimSpace(p.raw)]
}

// compiledMapping is a Mapping with its templates parsed.
type compiledMapping struct {
	username, email, realname, firstname, lastname, notes template
	aliases                                               [4]template
	groupsColumn                                          string
	groupsSeparator                                       string
	groupsByItem                                          map[string][]string // lower-cased item → groups
}

// Validate parses every template of the mapping and reports the first error,
// naming its config key.
func (m Mapping) Validate() error {
	_, err := m.compile()
	return err
}

func (m Mapping) compile() (*compiledMapping, error) {
	c := &compiledMapping{
		groupsColumn:    source.CanonicalField(m.GroupsColumn),
		groupsSeparator: m.GroupsSeparator,
		groupsByItem:    map[string][]string{},
	}
	if strings.TrimSpace(m.GroupsColumn) == "" {
		c.groupsColumn = ""
	}
	specs := []struct {
		key  string
		text string
		dst  *template
	}{
		{"mapping.username", m.Username, &c.username},
		{"mapping.email", m.Email, &c.email},
		{"mapping.realname", m.Realname, &c.realname},
		{"mapping.firstname", m.Firstname, &c.firstname},
		{"mapping.lastname", m.Lastname, &c.lastname},
		{"mapping.alias1", m.Alias1, &c.aliases[0]},
		{"mapping.alias2", m.Alias2, &c.aliases[1]},
		{"mapping.alias3", m.Alias3, &c.aliases[2]},
		{"mapping.alias4", m.Alias4, &c.aliases[3]},
		{"mapping.notes", m.Notes, &c.notes},
	}
	for _, s := range specs {
		t, err := parseTemplate(s.key, s.text)
		if err != nil {
			return nil, err
		}
		*s.dst = t
	}
	if strings.TrimSpace(m.Username) == "" {
		return nil, fmt.Errorf("mapping.username: must not be empty")
	}
	if len(c.username.fields()) == 0 {
		return nil, fmt.Errorf("mapping.username: %q has no {column} placeholder, so every request would map to one user", m.Username)
	}
	if strings.TrimSpace(m.Email) == "" {
		return nil, fmt.Errorf("mapping.email: must not be empty (enrollment emails need an address)")
	}
	for item, groups := range m.GroupsByItem {
		k := strings.ToLower(strings.TrimSpace(item))
		if k == "" {
			return nil, fmt.Errorf("mapping.groups_by_item: empty catalog item name")
		}
		for _, g := range groups {
			if strings.TrimSpace(g) == "" {
				return nil, fmt.Errorf("mapping.groups_by_item[%q]: empty group name", item)
			}
		}
		c.groupsByItem[k] = append(c.groupsByItem[k], groups...)
	}
	return c, nil
}

// templates lists every template with at least one placeholder.
func (c *compiledMapping) templates() []template {
	ts := []template{c.username, c.email, c.realname, c.firstname, c.lastname, c.notes}
	ts = append(ts, c.aliases[:]...)
	return ts
}

// checkColumns reports a placeholder naming a column the request does not
// have at all (as opposed to an empty value): a typo in the config.
func (c *compiledMapping) checkColumns(r source.Request) error {
	cols := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	return c.checkColumnList(r.Origin.File, cols)
}

func (c *compiledMapping) checkColumnList(file string, cols []string) error {
	for _, t := range c.templates() {
		for _, p := range t.parts {
			if p.field == "" || slices.Contains(cols, p.field) || slices.Contains(cols, strings.TrimSpace(p.raw)) {
				continue
			}
			return fmt.Errorf("%s: unknown column %q in %q: %s has no such column (it has: %s)",
				t.key, p.raw, t.text, nameOr(file, "the source"), strings.Join(cols, ", "))
		}
	}
	// A missing groups column would silently drop every membership.
	if c.groupsColumn != "" && !slices.Contains(cols, c.groupsColumn) {
		return fmt.Errorf("mapping.groups_column: unknown column %q: %s has no such column (it has: %s); set groups_column to \"\" if requests carry no group",
			c.groupsColumn, nameOr(file, "the source"), strings.Join(cols, ", "))
	}
	return nil
}

// CheckColumns reports the first template placeholder naming a column that
// a file lacks (columns as field names, e.g. source.FileInfo.Columns), so
// that a typo in the config fails before any row is read.
func (m Mapping) CheckColumns(file string, columns []string) error {
	c, err := m.compile()
	if err != nil {
		return err
	}
	return c.checkColumnList(file, columns)
}

// groups returns the groups a request asks for, in order, without
// duplicates or empty names.
func (c *compiledMapping) groups(r source.Request) []string {
	var out []string
	add := func(g string) {
		g = strings.TrimSpace(g)
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if c.groupsColumn != "" {
		v := r.Fields[c.groupsColumn]
		if c.groupsSeparator == "" {
			add(v)
		} else {
			for _, g := range strings.Split(v, c.groupsSeparator) {
				add(g)
			}
		}
	}
	if len(c.groupsByItem) > 0 {
		for _, g := range c.groupsByItem[strings.ToLower(strings.TrimSpace(r.Fields["cat_item"]))] {
			add(g)
		}
	}
	return out
}
