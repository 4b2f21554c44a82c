package sync

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/duosync/duosync/source"
)

func TestTemplateErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		field, value, want string
	}{
		{"alias2", `GLOBAL\{requested_for.user_name`, "mapping.alias2: unclosed placeholder"},
		{"notes", "{number", "mapping.notes: unclosed placeholder"},
		{"realname", "{a{b}}", "mapping.realname: unclosed placeholder"},
		{"email", "x}", "mapping.email: unmatched '}'"},
		{"lastname", "{ }", "mapping.lastname: empty placeholder"},
		{"username", "", "mapping.username: must not be empty"},
		{"username", "fixed", "mapping.username: \"fixed\" has no {column} placeholder"},
		{"email", "", "mapping.email: must not be empty"},
	}
	for _, tt := range tests {
		m := DefaultMapping()
		switch tt.field {
		case "alias2":
			m.Alias2 = tt.value
		case "notes":
			m.Notes = tt.value
		case "realname":
			m.Realname = tt.value
		case "email":
			m.Email = tt.value
		case "lastname":
			m.Lastname = tt.value
		case "username":
			m.Username = tt.value
		}
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: error %v, want %q", tt.field, tt.value, err, tt.want)
		}
		if _, err := NewBuilder(m, Filter{}); err == nil {
			t.Errorf("%s=%q: NewBuilder accepted it", tt.field, tt.value)
		}
	}
	if err := DefaultMapping().Validate(); err != nil {
		t.Errorf("default mapping: %v", err)
	}
}

func TestUnknownColumnIsAConfigError(t *testing.T) {
	m := DefaultMapping()
	m.Alias3 = "{requested_for.employee_number}"
	b, err := NewBuilder(m, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	r := person("R1", "a.b", "a@example.com", "")
	r.Origin.File = "exports/march.csv"
	err = b.Add(r)
	if err == nil {
		t.Fatal("Add accepted a mapping naming a column the export lacks")
	}
	for _, want := range []string{"mapping.alias3", `unknown column "requested_for.employee_number"`, "exports/march.csv"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestTemplatesTakeLabelsAndLeaveIncompleteValuesEmpty(t *testing.T) {
	m := DefaultMapping()
	m.Username = "{Requested for.Email}"
	m.Alias1 = "{Requested for.User ID}"
	m.Alias3 = "{Number}-{sys_id}"
	r := person("RITM9", "", "x@example.com", "")
	r.Fields["sys_id"] = ""
	d := mustBuild(t, []source.Request{r}, nil, m, Filter{})
	if len(d.Users) != 1 {
		t.Fatalf("invalid: %+v", d.Invalid)
	}
	u := d.Users[0]
	if u.Username != "x@example.com" {
		t.Errorf("username from a label placeholder = %q", u.Username)
	}
	// user_name is empty: alias1 and "GLOBAL\{…}" must both be unset, not "GLOBAL\".
	if len(u.Aliases) != 0 {
		t.Errorf("aliases = %q, want none", u.Aliases)
	}
	r.Fields["sys_id"] = "abc"
	r.Fields["requested_for.user_name"] = "xu"
	d = mustBuild(t, []source.Request{r}, nil, m, Filter{})
	if got := strings.Join(d.Users[0].Aliases, " "); got != `xu GLOBAL\xu RITM9-abc` {
		t.Errorf("aliases = %q", got)
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		allowed int // of a base of 1,000
		str     string
		err     bool
	}{
		{"10%", 100, "10%", false},
		{" 2.5 % ", 25, "2.5%", false},
		{"0", 0, "0", false},
		{"5000", 5000, "5000", false},
		{"", -1, "off", false},
		{"off", -1, "off", false},
		{"-1", 0, "", true},
		{"ten", 0, "", true},
		{"%", 0, "", true},
		{"-5%", 0, "", true},
		{"1.5", 0, "", true},
	}
	for _, tt := range tests {
		l, err := ParseLimit(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseLimit(%q) = %v, want an error", tt.in, l)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", tt.in, err)
			continue
		}
		if l.String() != tt.str {
			t.Errorf("ParseLimit(%q).String() = %q, want %q", tt.in, l, tt.str)
		}
		if tt.allowed >= 0 && l.Allowed(1000) != tt.allowed {
			t.Errorf("ParseLimit(%q).Allowed(1000) = %d, want %d", tt.in, l.Allowed(1000), tt.allowed)
		}
		if tt.allowed < 0 && l.IsSet() {
			t.Errorf("ParseLimit(%q) is set", tt.in)
		}
	}
}

func TestPolicyAndMappingDecodeFromYAMLOverDefaults(t *testing.T) {
	var cfg struct {
		Mapping Mapping `yaml:"mapping"`
		Source  Filter  `yaml:"source"`
		Policy  Policy  `yaml:"policy"`
	}
	cfg.Mapping, cfg.Policy = DefaultMapping(), DefaultPolicy()
	doc := `
source:
  catalog_items: ["Duo MFA Enrollment"]
mapping:
  username: "{requested_for.user_name}"
  alias2: "CORP\\{requested_for.user_name}"
policy:
  resend_after: 72h
  max_creates: 250
  max_invalid: "1%"
  update_existing: true
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Policy
	if !p.Enroll || p.MaxResends != 2 || p.EnrollValidSecs != 86400 || p.ResendAfter != 72*time.Hour || !p.UpdateExisting {
		t.Errorf("policy = %+v", p)
	}
	if p.MaxCreates.String() != "250" || p.MaxInvalid.String() != "1%" || p.MaxChanges.String() != "5000" {
		t.Errorf("limits = %s %s %s", p.MaxCreates, p.MaxInvalid, p.MaxChanges)
	}
	if cfg.Mapping.Username != "{requested_for.user_name}" || cfg.Mapping.Alias2 != `CORP\{requested_for.user_name}` || cfg.Mapping.Notes != "{number}" {
		t.Errorf("mapping = %+v", cfg.Mapping)
	}
	if len(cfg.Source.CatalogItems) != 1 {
		t.Errorf("filter = %+v", cfg.Source)
	}
	bad := "policy:\n  max_creates: lots\n"
	if err := yaml.Unmarshal([]byte(bad), &cfg); err == nil || !strings.Contains(err.Error(), `invalid limit "lots"`) {
		t.Errorf("bad limit: %v", err)
	}
	if err := (Policy{MaxChanges: Percent(5)}).Validate(); err == nil || !strings.Contains(err.Error(), "policy.max_changes") {
		t.Errorf("percent max_changes: %v", err)
	}
	if err := (Policy{MaxResends: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "policy.max_resends") {
		t.Errorf("negative max_resends: %v", err)
	}
}

func TestCheckColumns(t *testing.T) {
	cols := []string{"number", "requested_for.email", "requested_for.user_name", "requested_for.name",
		"requested_for.first_name", "requested_for.last_name", "variables.duo_group"}
	if err := DefaultMapping().CheckColumns("sample.csv", cols); err != nil {
		t.Errorf("default columns: %v", err)
	}
	err := DefaultMapping().CheckColumns("old.csv", cols[:2])
	if err == nil || !strings.Contains(err.Error(), "mapping.realname") || !strings.Contains(err.Error(), "old.csv has no such column") {
		t.Errorf("err = %v", err)
	}
}

func TestMissingGroupsColumnIsAConfigError(t *testing.T) {
	r := person("R1", "a.b", "a@example.com", "")
	delete(r.Fields, "variables.duo_group")
	_, err := BuildDesired([]source.Request{r}, nil, DefaultMapping(), Filter{})
	if err == nil || !strings.Contains(err.Error(), `mapping.groups_column: unknown column "variables.duo_group"`) {
		t.Errorf("err = %v", err)
	}
	m := DefaultMapping()
	m.GroupsColumn = ""
	if _, err := BuildDesired([]source.Request{r}, nil, m, Filter{}); err != nil {
		t.Errorf("no groups column: %v", err)
	}
}
