package sync

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/duosync/duosync/source"
)

func mustBuild(t *testing.T, reqs []source.Request, problems []source.Problem, m Mapping, f Filter) Desired {
	t.Helper()
	d, err := BuildDesired(reqs, problems, m, f)
	if err != nil {
		t.Fatalf("BuildDesired: %v", err)
	}
	return d
}

func TestDefaultMappingReproducesTheScripts(t *testing.T) {
	d := mustBuild(t, []source.Request{person("RITM0010001", "jane.doe", "Jane.Doe@Example.com", "VPN Users")}, nil, DefaultMapping(), Filter{})
	if len(d.Users) != 1 {
		t.Fatalf("users = %+v, want one", d.Users)
	}
	got := d.Users[0]
	want := DesiredUser{
		Key: "jane.doe@example.com", Username: "Jane.Doe@Example.com", Email: "Jane.Doe@Example.com",
		Realname: "jane doe", Firstname: "jane", Lastname: "doe",
		Aliases: []string{"jane.doe", `GLOBAL\jane.doe`}, Notes: "RITM0010001",
		Memberships: []Membership{{Group: "VPN Users", Requests: []string{"RITM0010001"}}},
		Requests:    []string{"RITM0010001"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("user =\n%+v\nwant\n%+v", got, want)
	}
	if d.Counts.Provision != 1 || d.Counts.Users != 1 || d.Counts.Memberships != 1 || d.Counts.Rows != 1 {
		t.Errorf("counts = %+v", d.Counts)
	}
}

func TestFilters(t *testing.T) {
	base := func(ritm string, kv ...string) source.Request {
		r := person(ritm, "a.b", "a.b@example.com", "")
		for i := 0; i+1 < len(kv); i += 2 {
			r.Fields[kv[i]] = kv[i+1]
		}
		return r
	}
	tests := []struct {
		name string
		req  source.Request
		f    Filter
		skip string // "" = provisioned
	}{
		{"raw approved", base("R1", "approval", "approved"), Filter{}, ""},
		{"display Approved", base("R1", "approval", "Approved"), Filter{}, ""},
		{"requested", base("R1", "approval", "requested"), Filter{}, SkipNotApproved},
		{"rejected display", base("R1", "approval", "Rejected"), Filter{}, SkipNotApproved},
		{"no approval column", func() source.Request { r := base("R1"); delete(r.Fields, "approval"); return r }(), Filter{}, SkipNotApproved},
		{"closed incomplete raw", base("R1", "state", "4"), Filter{}, SkipClosedIncomplete},
		{"closed incomplete display", base("R1", "state", "Closed Incomplete"), Filter{}, SkipClosedIncomplete},
		{"closed skipped raw", base("R1", "state", "7"), Filter{}, SkipClosedSkipped},
		{"closed skipped display", base("R1", "state", "closed skipped"), Filter{}, SkipClosedSkipped},
		{"closed complete is fine", base("R1", "state", "Closed Complete"), Filter{}, ""},
		{"item by name", base("R1"), Filter{CatalogItems: []string{"duo mfa enrollment"}}, ""},
		{"item by sys_id", base("R1", "cat_item", "0a1b2c"), Filter{CatalogItems: []string{"Other", "0a1b2c"}}, ""},
		{"other item", base("R1", "cat_item", "New Laptop"), Filter{CatalogItems: []string{"Duo MFA Enrollment"}}, SkipOtherCatalogItem},
		{"inactive requester", base("R1", "requested_for.active", "false"), Filter{}, SkipRequesterInactive},
		{"active requester", base("R1", "requested_for.active", "true"), Filter{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustBuild(t, []source.Request{tt.req}, nil, DefaultMapping(), tt.f)
			if tt.skip == "" {
				if len(d.Users) != 1 || d.Counts.Provision != 1 {
					t.Fatalf("not provisioned: skipped %+v, invalid %+v", d.Skipped, d.Invalid)
				}
				return
			}
			if len(d.Users) != 0 || d.Counts.Skip[tt.skip] != 1 || len(d.Skipped) != 1 || d.Skipped[0].Reason != tt.skip {
				t.Fatalf("want skipped %s; users %d, skip counts %v", tt.skip, len(d.Users), d.Counts.Skip)
			}
		})
	}
}

func TestIdenticalRecordIsSkippedButAnUpdatedOneMerges(t *testing.T) {
	a := person("RITM1", "a.b", "a.b@example.com", "VPN")
	dup := person("RITM1", "a.b", "a.b@example.com", "VPN")
	dup.Origin.File = "second.csv" // same record in an overlapping export
	changed := person("RITM1", "a.b", "a.b@example.com", "Admins")
	d := mustBuild(t, []source.Request{a, dup, changed}, nil, DefaultMapping(), Filter{})
	if d.Counts.Skip[SkipDuplicate] != 1 {
		t.Errorf("duplicates = %d, want 1", d.Counts.Skip[SkipDuplicate])
	}
	if len(d.Users) != 1 || len(d.Users[0].Memberships) != 2 {
		t.Fatalf("users = %+v", d.Users)
	}
}

func TestValidationNamesFileLineColumnAndReason(t *testing.T) {
	at := func(line int, r source.Request) source.Request {
		r.Origin = source.Origin{File: "exports/x.csv", Line: line}
		return r
	}
	reqs := []source.Request{
		at(2, person("R1", "ok.user", "ok.user@example.com", "")),
		at(3, person("R2", "no.email", "", "")),
		at(4, person("R3", "bad.email", "bad.email@", "")),
		at(5, person("R4", "two.at", "a@b@example.com", "")),
		at(6, person("R5", "no.dot", "x@localhost", "")),
		at(7, person("R6", "spaced", "with space@example.com", "")),
		at(8, person("R7", "ctl", "ctl\x01@example.com", "")),
		at(9, person("R8", "bad\x00alias", "alias@example.com", "")),
		at(10, person("R9", "grp", "grp@example.com", "VPN\x07")),
	}
	nousername := at(11, person("R10", "x", "", ""))
	m := DefaultMapping()
	d := mustBuild(t, append(reqs, nousername), nil, m, Filter{})
	got := map[int]source.Problem{}
	for _, p := range d.Invalid {
		got[p.Line] = p
	}
	want := map[int][2]string{ // line → reason, column
		3:  {RejectMissingUsername, "requested_for.email"}, // the username is the email
		4:  {RejectInvalidEmail, "requested_for.email"},
		5:  {RejectInvalidEmail, "requested_for.email"},
		6:  {RejectInvalidEmail, "requested_for.email"},
		7:  {RejectInvalidUsername, "requested_for.email"},
		8:  {RejectInvalidUsername, "requested_for.email"},
		9:  {RejectInvalidAlias, "requested_for.user_name"},
		10: {RejectInvalidGroup, "variables.duo_group"},
		11: {RejectMissingUsername, "requested_for.email"},
	}
	for line, w := range want {
		p, ok := got[line]
		if !ok {
			t.Errorf("line %d: no problem reported, want %s", line, w[0])
			continue
		}
		if p.Reason != w[0] || p.Column != w[1] || p.File != "exports/x.csv" {
			t.Errorf("line %d: got %+v, want reason %s column %s", line, p, w[0], w[1])
		}
		if !strings.Contains(p.Error(), "exports/x.csv:") || p.Detail == "" {
			t.Errorf("line %d: message %q does not locate the row", line, p.Error())
		}
	}
	if len(d.Users) != 1 || d.Users[0].Key != "ok.user@example.com" {
		t.Errorf("one bad row stopped the others: users %+v", d.Users)
	}
	if d.Counts.Invalid() != len(want) {
		t.Errorf("invalid = %d, want %d (%v)", d.Counts.Invalid(), len(want), d.Counts.Reject)
	}

	// With username = user_name, a missing email is reported as such.
	m.Username = "{requested_for.user_name}"
	d = mustBuild(t, []source.Request{at(3, person("R2", "no.email", "", ""))}, nil, m, Filter{})
	if len(d.Invalid) != 1 || d.Invalid[0].Reason != RejectMissingEmail {
		t.Errorf("invalid = %+v, want missing_email", d.Invalid)
	}
}

func TestSourceProblemsAreCounted(t *testing.T) {
	probs := []source.Problem{{File: "x.csv", Line: 4, Column: "number", Reason: "bad_quote", Detail: "unterminated quote"}}
	d := mustBuild(t, []source.Request{person("R1", "a.b", "a.b@example.com", "")}, probs, DefaultMapping(), Filter{})
	if d.Counts.Rows != 2 || d.Counts.Reject["bad_quote"] != 1 || len(d.Invalid) != 1 {
		t.Errorf("counts = %+v invalid = %+v", d.Counts, d.Invalid)
	}
}

func TestMergeUnionOfGroupsAndNormalisedUsername(t *testing.T) {
	reqs := []source.Request{
		person("RITM2", "jane.doe", "Jane.Doe@example.com", "VPN Users"),
		person("RITM1", "jane.doe", " jane.doe@EXAMPLE.com ", "MFA Users"),
		person("RITM3", "jane.doe", "jane.doe@example.com", "vpn users"),
	}
	d := mustBuild(t, reqs, nil, DefaultMapping(), Filter{})
	if len(d.Users) != 1 {
		t.Fatalf("users = %d, want one merged user", len(d.Users))
	}
	u := d.Users[0]
	if u.Username != "Jane.Doe@example.com" || u.Key != "jane.doe@example.com" {
		t.Errorf("username %q key %q", u.Username, u.Key)
	}
	if !reflect.DeepEqual(u.Requests, []string{"RITM2", "RITM1", "RITM3"}) {
		t.Errorf("requests = %v", u.Requests)
	}
	want := []Membership{{"MFA Users", []string{"RITM1"}}, {"VPN Users", []string{"RITM2", "RITM3"}}}
	if !reflect.DeepEqual(u.Memberships, want) {
		t.Errorf("memberships = %+v, want %+v", u.Memberships, want)
	}
	if u.Notes != "RITM2, RITM1, RITM3" {
		t.Errorf("notes = %q", u.Notes)
	}
	if d.Counts.Users != 1 || d.Counts.Memberships != 2 || d.Counts.Provision != 3 {
		t.Errorf("counts = %+v", d.Counts)
	}
}

func TestConflictingAttributesMakeEveryRequestAConflict(t *testing.T) {
	m := DefaultMapping()
	m.Username = "{requested_for.user_name}"
	reqs := []source.Request{
		person("RITM1", "jdoe", "jdoe@example.com", "VPN"),
		person("RITM2", "jdoe", "john.doe@example.com", "MFA"),
		person("RITM3", "other", "other@example.com", ""),
	}
	d := mustBuild(t, reqs, nil, m, Filter{})
	if len(d.Users) != 1 || d.Users[0].Key != "other" {
		t.Fatalf("users = %+v, want only other", d.Users)
	}
	if len(d.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v", d.Conflicts)
	}
	c := d.Conflicts[0]
	if c.Field != "email" || !slices.Equal(c.Requests, []string{"RITM1", "RITM2"}) || !strings.Contains(c.Detail, "john.doe@example.com") {
		t.Errorf("conflict = %+v", c)
	}
	if d.Counts.Reject[RejectConflict] != 2 || d.Counts.Provision != 1 {
		t.Errorf("counts = %+v", d.Counts)
	}
}

func TestGroupsSeparatorAndByItem(t *testing.T) {
	m := DefaultMapping()
	m.GroupsSeparator = ";"
	m.GroupsByItem = map[string][]string{"Duo MFA Enrollment": {"MFA Users"}}
	d := mustBuild(t, []source.Request{person("R1", "a.b", "a@example.com", " VPN ; Admins;;MFA Users")}, nil, m, Filter{})
	var got []string
	for _, mm := range d.Users[0].Memberships {
		got = append(got, mm.Group)
	}
	if !slices.Equal(got, []string{"Admins", "MFA Users", "VPN"}) {
		t.Errorf("groups = %v", got)
	}
	if g := GroupNames(d); !slices.Equal(g, []string{"Admins", "MFA Users", "VPN"}) {
		t.Errorf("GroupNames = %v", g)
	}
	if u := Usernames(d); !slices.Equal(u, []string{"a@example.com"}) {
		t.Errorf("Usernames = %v", u)
	}
}

func TestEmptySourceWarns(t *testing.T) {
	d := mustBuild(t, nil, nil, DefaultMapping(), Filter{})
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "no requests") {
		t.Errorf("warnings = %v", d.Warnings)
	}
}

func TestAliasSharedByTwoUsersIsAConflict(t *testing.T) {
	m := DefaultMapping()
	m.Alias2 = "" // keep the test small: alias1 = user_name
	reqs := []source.Request{
		person("R1", "jdoe", "jane.doe@example.com", ""),
		person("R2", "jdoe", "john.doe@example.com", ""),
		person("R3", "ok", "ok@example.com", ""),
	}
	d := mustBuild(t, reqs, nil, m, Filter{})
	if len(d.Users) != 1 || d.Users[0].Key != "ok@example.com" || len(d.Conflicts) != 2 {
		t.Fatalf("users %+v conflicts %+v", d.Users, d.Conflicts)
	}
	for _, c := range d.Conflicts {
		if c.Field != "aliases" || !strings.Contains(c.Detail, "jdoe") {
			t.Errorf("conflict %+v", c)
		}
	}
	if d.Counts.Reject[RejectConflict] != 2 {
		t.Errorf("counts %+v", d.Counts)
	}
}

func TestBidiOverridesAreRefusedInIdentifiers(t *testing.T) {
	for _, s := range []string{"jane\u202emoc.x@example.com", "a\u2066b@example.com", "a\u200fb@example.com"} {
		if !hasControl(s) {
			t.Errorf("%q passes as a username or email", s)
		}
	}
	// Joiners are part of real names and stay.
	if hasControl("Mi\u200dchael") || stripControl("Ann\u202eA") != "Ann A" {
		t.Errorf("ZWJ refused, or a bidi override kept in a display name: %q", stripControl("Ann\u202eA"))
	}
}
