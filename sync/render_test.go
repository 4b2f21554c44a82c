package sync

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// scenario is a small but complete run: new users, a merged user, an
// existing user missing a group, one disabled, one conflicting, one with an
// email sent yesterday, one invalid row, one missing group and one not
// approved.
func scenario(t *testing.T) (Have, Desired, map[string]EnrollmentHistory) {
	t.Helper()
	reqs := []source.Request{
		person("RITM0010001", "jane.doe", "jane.doe@example.com", "VPN Users"),
		person("RITM0010002", "jane.doe", "jane.doe@example.com", "MFA Users"),
		person("RITM0010003", "bob.roe", "bob.roe@example.com", "VPN Users"),
		person("RITM0010004", "carl.poe", "carl.poe@example.com", "MFA Users"),
		person("RITM0010005", "dina.low", "dina.low@example.com", "VPN Users"),
		person("RITM0010006", "eve.sun", "eve.sun@example.com", ""),
		person("RITM0010007", "eve.sun", "eve.sun@corp.example.com", ""),
		person("RITM0010008", "fay.lee", "fay.lee@example.com", "Contractors"),
		person("RITM0010009", "gus.fox", "gus.fox@example.com", ""),
		with2(person("RITM0010010", "hal.kim", "hal.kim@example.com", ""), "approval", "Requested"),
		person("RITM0010011", "ivy.orr", "ivy.orr@", ""),
	}
	reqs[6].Fields["requested_for.email"] = "eve.sun@example.com"
	reqs[6].Fields["requested_for.name"] = "Eve Sunday"
	for i := range reqs {
		reqs[i].Origin = source.Origin{File: "sample.csv", Line: i + 2}
	}
	want := mustBuild(t, reqs, nil, DefaultMapping(), Filter{})
	users := []duo.User{
		duoUser("DU000000000000000011", "carl.poe", "carl.poe@example.com", vpn),
		with(duoUser("DU000000000000000012", "dina.low", "dina.low@example.com"), func(u *duo.User) { u.Status = "disabled" }),
		with(duoUser("DU000000000000000013", "gus.fox", "gus.fox@example.com"), func(u *duo.User) { u.IsEnrolled = false }),
	}
	hist := map[string]EnrollmentHistory{"gus.fox@example.com": {Count: 1, Last: now.Add(-26 * 3600e9)}}
	return Have{Users: users, Groups: []duo.Group{vpn, mfa}, Total: 3}, want, hist
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sync -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	have, want, hist := scenario(t)
	plan := Diff(have, want, hist, DefaultPolicy(), now)
	var buf bytes.Buffer
	if err := Render(&buf, plan); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.golden", buf.Bytes())
	last := lastLine(buf.String())
	if last != "Plan: 3 users to create, 3 enrollments to send, 4 memberships to add." {
		t.Errorf("summary line = %q", last)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		kinds []ActionKind
		want  string
	}{
		{nil, "No changes. Duo matches the approved requests."},
		{[]ActionKind{CreateUser, Enroll, AddMembership, AddMembership}, "Plan: 1 user to create, 1 enrollment to send, 2 memberships to add."},
		{[]ActionKind{CreateGroup, CreateGroup, UpdateUser, AddMembership}, "Plan: 2 groups to create, 0 users to create, 1 user to update, 0 enrollments to send, 1 membership to add."},
	}
	for _, tt := range tests {
		var p Plan
		for _, k := range tt.kinds {
			p.Actions = append(p.Actions, Action{Kind: k, Username: "u"})
		}
		if got := SummaryLine(p); got != tt.want {
			t.Errorf("SummaryLine(%v) = %q, want %q", tt.kinds, got, tt.want)
		}
	}
	// Seven new users, each in one group, plus two more memberships.
	var p Plan
	for range 7 {
		p.Actions = append(p.Actions, Action{Kind: CreateUser}, Action{Kind: Enroll}, Action{Kind: AddMembership})
	}
	p.Actions = append(p.Actions, Action{Kind: AddMembership}, Action{Kind: AddMembership})
	if got := SummaryLine(p); got != "Plan: 7 users to create, 7 enrollments to send, 9 memberships to add." {
		t.Errorf("got %q", got)
	}
}

func TestRenderNoChangesStillListsWhatNeedsAHuman(t *testing.T) {
	have, want, hist := scenario(t)
	plan := Diff(have, want, hist, DefaultPolicy(), now)
	plan.Actions = nil
	var buf bytes.Buffer
	if err := Render(&buf, plan); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"Blocked (", "dina.low@example.com", "Conflicts (", "Invalid rows (", "sample.csv:12", "No changes. Duo matches the approved requests."} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "Actions are marked") {
		t.Error("legend printed with no actions")
	}
	empty := Diff(Have{}, mustBuild(t, nil, nil, DefaultMapping(), Filter{}), nil, DefaultPolicy(), now)
	buf.Reset()
	_ = Render(&buf, empty)
	if !strings.Contains(buf.String(), "no requests") || lastLine(buf.String()) != "No changes. Duo matches the approved requests." {
		t.Errorf("empty source:\n%s", buf.String())
	}
}

func TestRenderGoldenUpdatesAndNewGroups(t *testing.T) {
	have, want, hist := scenario(t)
	have.Users[0].Email = "carl.old@example.com" // carl.poe: drift, written with update_existing
	p := DefaultPolicy()
	p.UpdateExisting, p.CreateMissingGroups = true, true
	plan := Diff(have, want, hist, p, now)
	var buf bytes.Buffer
	if err := Render(&buf, plan); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-update.golden", buf.Bytes())
	if last := lastLine(buf.String()); last != "Plan: 1 group to create, 3 users to create, 1 user to update, 3 enrollments to send, 5 memberships to add." {
		t.Errorf("summary line = %q", last)
	}
}
