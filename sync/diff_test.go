package sync

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
)

var (
	now    = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	vpn    = duo.Group{ID: "DG000000000000000001", Name: "VPN Users"}
	mfa    = duo.Group{ID: "DG000000000000000002", Name: "MFA Users"}
	admins = duo.Group{ID: "DG000000000000000003", Name: "Admins"}
)

// duoUser is an active, enrolled Duo user as the default mapping would have
// created it.
func duoUser(id, userName, email string, groups ...duo.Group) duo.User {
	first, last, _ := strings.Cut(userName, ".")
	return duo.User{ID: id, Username: email, Aliases: []string{userName, `GLOBAL\` + userName}, Email: email,
		Realname: strings.TrimSpace(first + " " + last), Firstname: first, Lastname: last,
		Status: "active", IsEnrolled: true, Groups: groups}
}

func with(u duo.User, f func(*duo.User)) duo.User { f(&u); return u }

// actionLines renders actions compactly: "kind username [group] [user_id]".
func actionLines(acts []Action) []string {
	var out []string
	for _, a := range acts {
		s := string(a.Kind)
		if a.Username != "" {
			s += " " + a.Username
		}
		if a.Group != "" {
			s += " [" + a.Group + "]"
		}
		if a.UserID != "" {
			s += " " + a.UserID
		}
		out = append(out, s)
	}
	return out
}

func TestDiff(t *testing.T) {
	jane := person("RITM1", "jane.doe", "jane.doe@example.com", "VPN Users")
	bob := person("RITM2", "bob.roe", "bob.roe@example.com", "VPN Users")
	defaults := DefaultPolicy()
	tests := []struct {
		name    string
		reqs    []source.Request
		users   []duo.User
		groups  []duo.Group
		history map[string]EnrollmentHistory
		policy  func(*Policy)

		actions   []string
		blocked   []string // usernames
		conflicts []string // usernames
		drift     []string // "kind username field/group"
		errors    []string // "username group"
		pending   []string // usernames
		inSync    int
		outcomes  map[string]string // RITM → planned outcome
	}{
		{
			name:     "new user: create, enroll, membership",
			reqs:     []source.Request{jane},
			groups:   []duo.Group{vpn},
			actions:  []string{"create_user jane.doe@example.com", "enroll jane.doe@example.com", "add_membership jane.doe@example.com [VPN Users]"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "existing user in sync: nothing, never re-created",
			reqs:     []source.Request{jane},
			users:    []duo.User{duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn)},
			groups:   []duo.Group{vpn},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name:     "existing user matched case-insensitively",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.Username = "Jane.Doe@Example.COM" })},
			groups:   []duo.Group{vpn},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name: "existing user matched by alias",
			reqs: []source.Request{jane},
			users: []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) {
				u.Username, u.Aliases = "jdoe", []string{"jane.doe@example.com", "jane.doe", `GLOBAL\jane.doe`}
			})},
			groups:   []duo.Group{vpn},
			actions:  []string{"add_membership jdoe [VPN Users] DU1"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "only missing memberships are added",
			reqs:     []source.Request{jane, person("RITM3", "jane.doe", "jane.doe@example.com", "Admins")},
			users:    []duo.User{duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn)},
			groups:   []duo.Group{vpn, admins},
			actions:  []string{"add_membership jane.doe@example.com [Admins] DU1"},
			outcomes: map[string]string{"RITM1": OutcomeInSync, "RITM3": OutcomeChange},
		},
		{
			name:     "unenrolled existing user is enrolled",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.IsEnrolled = false })},
			groups:   []duo.Group{vpn},
			actions:  []string{"enroll jane.doe@example.com DU1"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "enroll off",
			reqs:     []source.Request{jane},
			groups:   []duo.Group{vpn},
			policy:   func(p *Policy) { p.Enroll = false },
			actions:  []string{"create_user jane.doe@example.com", "add_membership jane.doe@example.com [VPN Users]"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "enrollment sent recently is not re-sent",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.IsEnrolled = false })},
			groups:   []duo.Group{vpn},
			history:  map[string]EnrollmentHistory{"jane.doe@example.com": {Count: 1, Last: now.Add(-defaults.ResendAfter + time.Minute)}},
			pending:  []string{"jane.doe@example.com"},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name:     "enrollment re-sent after resend_after",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.IsEnrolled = false })},
			groups:   []duo.Group{vpn},
			history:  map[string]EnrollmentHistory{"jane.doe@example.com": {Count: 2, Last: now.Add(-defaults.ResendAfter)}},
			actions:  []string{"enroll jane.doe@example.com DU1"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "max_resends reached",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.IsEnrolled = false })},
			groups:   []duo.Group{vpn},
			history:  map[string]EnrollmentHistory{"jane.doe@example.com": {Count: 3, Last: now.Add(-30 * 24 * time.Hour)}},
			pending:  []string{"jane.doe@example.com"},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name:     "an unconfirmed send of a new user's email counts too",
			reqs:     []source.Request{jane},
			groups:   []duo.Group{vpn},
			history:  map[string]EnrollmentHistory{"jane.doe@example.com": {Count: 1, Last: now.Add(-time.Hour)}},
			actions:  []string{"create_user jane.doe@example.com", "add_membership jane.doe@example.com [VPN Users]"},
			pending:  []string{"jane.doe@example.com"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "disabled user is blocked, never touched",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) { u.Status, u.IsEnrolled, u.Email = "disabled", false, "old@example.com" })},
			groups:   []duo.Group{vpn},
			blocked:  []string{"jane.doe@example.com"},
			outcomes: map[string]string{"RITM1": OutcomeBlocked},
		},
		{
			name:     "locked out user is blocked",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) { u.Status, u.LockoutReason = "locked out", "Failed Attempts" })},
			groups:   []duo.Group{vpn},
			blocked:  []string{"jane.doe@example.com"},
			outcomes: map[string]string{"RITM1": OutcomeBlocked},
		},
		{
			name:     "pending deletion user is blocked",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) { u.Status = "Pending Deletion" })},
			groups:   []duo.Group{vpn},
			blocked:  []string{"jane.doe@example.com"},
			outcomes: map[string]string{"RITM1": OutcomeBlocked},
		},
		{
			name:     "bypass user is not blocked",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) { u.Status = "bypass" })},
			groups:   []duo.Group{vpn},
			actions:  []string{"add_membership jane.doe@example.com [VPN Users] DU1"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "attribute differences are drift when update_existing is off",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.Realname, u.Aliases = "Jane Q. Doe", nil })},
			groups:   []duo.Group{vpn},
			drift:    []string{"attribute jane.doe@example.com realname", "attribute jane.doe@example.com aliases"},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name:     "attribute differences are written with update_existing",
			reqs:     []source.Request{jane},
			users:    []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn), func(u *duo.User) { u.Email = "old@example.com" })},
			groups:   []duo.Group{vpn},
			policy:   func(p *Policy) { p.UpdateExisting = true },
			actions:  []string{"update_user jane.doe@example.com DU1"},
			outcomes: map[string]string{"RITM1": OutcomeChange},
		},
		{
			name:     "missing group is an error for its requests only",
			reqs:     []source.Request{jane, person("RITM3", "jane.doe", "jane.doe@example.com", "Nope")},
			groups:   []duo.Group{vpn},
			actions:  []string{"create_user jane.doe@example.com", "enroll jane.doe@example.com", "add_membership jane.doe@example.com [VPN Users]"},
			errors:   []string{"jane.doe@example.com Nope"},
			outcomes: map[string]string{"RITM1": OutcomeChange, "RITM3": OutcomeError},
		},
		{
			name:   "missing group is created first with create_missing_groups",
			reqs:   []source.Request{jane, bob},
			policy: func(p *Policy) { p.CreateMissingGroups = true },
			actions: []string{"create_group [VPN Users]",
				"create_user bob.roe@example.com", "enroll bob.roe@example.com", "add_membership bob.roe@example.com [VPN Users]",
				"create_user jane.doe@example.com", "enroll jane.doe@example.com", "add_membership jane.doe@example.com [VPN Users]"},
			outcomes: map[string]string{"RITM1": OutcomeChange, "RITM2": OutcomeChange},
		},
		{
			name:     "group names match case-insensitively",
			reqs:     []source.Request{person("RITM1", "jane.doe", "jane.doe@example.com", "vpn users")},
			users:    []duo.User{duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn)},
			groups:   []duo.Group{vpn},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name: "unexplained members of managed groups are drift, never removed",
			reqs: []source.Request{jane},
			users: []duo.User{duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn),
				duoUser("DU9", "old.timer", "old.timer@example.com", vpn, mfa)},
			groups:   []duo.Group{vpn, mfa},
			drift:    []string{"unexplained_member old.timer@example.com VPN Users"},
			inSync:   1,
			outcomes: map[string]string{"RITM1": OutcomeInSync},
		},
		{
			name: "alias shared by two Duo users is a conflict",
			reqs: []source.Request{jane},
			users: []duo.User{
				with(duoUser("DU1", "x", "x@example.com"), func(u *duo.User) { u.Aliases = []string{"jane.doe@example.com"} }),
				with(duoUser("DU2", "y", "y@example.com"), func(u *duo.User) { u.Aliases = []string{"jane.doe@example.com"} }),
			},
			groups:    []duo.Group{vpn},
			conflicts: []string{"jane.doe@example.com"},
			outcomes:  map[string]string{"RITM1": OutcomeConflict},
		},
		{
			name:      "new user whose alias belongs to another Duo user is a conflict",
			reqs:      []source.Request{jane},
			users:     []duo.User{with(duoUser("DU7", "z", "jane.doe"), func(u *duo.User) { u.Aliases = nil })},
			groups:    []duo.Group{vpn},
			conflicts: []string{"jane.doe@example.com"},
			outcomes:  map[string]string{"RITM1": OutcomeConflict},
		},
		{
			name:      "request conflicts from the source are carried",
			reqs:      []source.Request{jane, person("RITM5", "jd", "jane.doe@example.com", "")},
			groups:    []duo.Group{vpn},
			conflicts: []string{"jane.doe@example.com"},
			outcomes:  map[string]string{"RITM1": OutcomeConflict, "RITM5": OutcomeConflict},
		},
		{
			name: "one Duo user matched by two requested users is a conflict for both",
			reqs: []source.Request{jane, person("RITM6", "jdoe", "jdoe@example.com", "")},
			users: []duo.User{with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) {
				u.Username, u.Aliases = "jdoe@example.com", []string{"jane.doe@example.com"}
			})},
			groups:    []duo.Group{vpn},
			conflicts: []string{"jane.doe@example.com", "jdoe@example.com"},
			outcomes:  map[string]string{"RITM1": OutcomeConflict, "RITM6": OutcomeConflict},
		},
		{
			name:     "skipped requests are listed",
			reqs:     []source.Request{with2(jane, "approval", "rejected")},
			groups:   []duo.Group{vpn},
			outcomes: map[string]string{"RITM1": OutcomeSkipped},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustBuild(t, tt.reqs, nil, DefaultMapping(), Filter{})
			p := DefaultPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			have := Have{Users: tt.users, Groups: tt.groups, Total: len(tt.users)}
			plan := Diff(have, want, tt.history, p, now)

			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", what, got, want)
				}
			}
			check("actions", actionLines(plan.Actions), tt.actions)
			var blocked, conflicts, drift, errs, pending []string
			for _, b := range plan.Blocked {
				blocked = append(blocked, b.Username)
			}
			for _, c := range plan.Conflicts {
				conflicts = append(conflicts, c.Username)
			}
			for _, d := range plan.Drift {
				drift = append(drift, strings.TrimSpace(d.Kind+" "+d.Username+" "+d.Field+d.Group))
			}
			for _, e := range plan.Errors {
				errs = append(errs, e.Username+" "+e.Group)
			}
			for _, e := range plan.Pending {
				pending = append(pending, e.Username)
			}
			check("blocked", blocked, tt.blocked)
			check("conflicts", conflicts, tt.conflicts)
			check("drift", drift, tt.drift)
			check("errors", errs, tt.errors)
			check("pending", pending, tt.pending)
			if plan.InSync != tt.inSync {
				t.Errorf("in sync = %d, want %d", plan.InSync, tt.inSync)
			}
			got := map[string]string{}
			for _, r := range plan.Requests {
				got[r.Request] = r.Outcome
			}
			if !reflect.DeepEqual(got, tt.outcomes) {
				t.Errorf("request outcomes = %v, want %v", got, tt.outcomes)
			}
			for _, a := range plan.Actions {
				if a.Reason == "" {
					t.Errorf("action %s %s has no reason", a.Kind, a.Username)
				}
			}
			if err := plan.validate(); err != nil {
				t.Errorf("the plan does not validate: %v", err)
			}
		})
	}
}

func with2(r source.Request, k, v string) source.Request {
	f := make(map[string]string, len(r.Fields))
	for a, b := range r.Fields {
		f[a] = b
	}
	f[k] = v
	r.Fields = f
	return r
}

func TestDiffIsPureAndNeverDeletes(t *testing.T) {
	reqs := []source.Request{
		person("RITM1", "a.a", "a.a@example.com", "VPN Users"),
		person("RITM2", "b.b", "b.b@example.com", "MFA Users"),
		person("RITM3", "c.c", "c.c@example.com", "Admins"),
	}
	want := mustBuild(t, reqs, nil, DefaultMapping(), Filter{})
	users := []duo.User{duoUser("DU1", "b.b", "b.b@example.com", vpn), duoUser("DU2", "z.z", "z.z@example.com", mfa, vpn)}
	have := Have{Users: users, Groups: []duo.Group{vpn, mfa, admins}, Total: 2}
	before := slices.Clone(users[1].Groups)
	p1 := Diff(have, want, nil, DefaultPolicy(), now)
	p2 := Diff(have, want, nil, DefaultPolicy(), now)
	if !reflect.DeepEqual(p1, p2) {
		t.Error("two diffs of the same inputs differ")
	}
	if !slices.Equal(users[1].Groups, before) {
		t.Error("Diff mutated its input")
	}
	for _, a := range p1.Actions {
		if !a.Kind.valid() || strings.Contains(string(a.Kind), "remove") || strings.Contains(string(a.Kind), "delete") {
			t.Errorf("unexpected action %s", a.Kind)
		}
	}
	if len(p1.Depends.Users) != 3 || len(p1.Depends.Groups) != 3 {
		t.Errorf("fingerprint = %+v", p1.Depends)
	}
}

func TestUnexplainedMembersAreCappedPerGroup(t *testing.T) {
	users := []duo.User{duoUser("DU1", "jane.doe", "jane.doe@example.com", vpn)}
	for i := range 150 {
		n := fmt.Sprintf("old.%03d", i)
		users = append(users, duoUser(fmt.Sprintf("DUX%03d", i), n, n+"@example.com", vpn))
	}
	want := mustBuild(t, []source.Request{person("RITM1", "jane.doe", "jane.doe@example.com", "VPN Users")}, nil, DefaultMapping(), Filter{})
	plan := Diff(Have{Users: users, Groups: []duo.Group{vpn}, Total: len(users)}, want, nil, DefaultPolicy(), now)
	if len(plan.Drift) != maxDriftMembers+1 || plan.Unexplained["VPN Users"] != 150 {
		t.Fatalf("drift %d entries, unexplained %v", len(plan.Drift), plan.Unexplained)
	}
	if last := plan.Drift[len(plan.Drift)-1]; !strings.Contains(last.Detail, "and 50 more members") {
		t.Errorf("last drift = %+v", last)
	}
}
