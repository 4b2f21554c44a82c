package sync

import (
	"strings"
	"testing"

	"github.com/duosync/duosync/source"
)

// FuzzBuildDesired feeds arbitrary templates and field values through the
// mapping and the builder: no input may panic, and every row must end up
// provisioned, skipped or rejected, exactly once.
func FuzzBuildDesired(f *testing.F) {
	f.Add("{requested_for.email}", `GLOBAL\{requested_for.user_name}`, "jane.doe@example.com", "jane.doe", "VPN", "Approved", "1")
	f.Add("{x", "}", "", "", "", "", "")
	f.Add("{requested_for.email}", "{number}-{state}", "a@b.co", "a\x00b", "G\x07", "approved", "4")
	f.Add("{Requested for.Email}", "{Requested for.User ID}", "A@B.CO ", " a ", "x;y", "APPROVED", "Closed Skipped")
	f.Add("{requested_for.user_name}", "", "bad@", "\xff\xfe", "", "approved", "7")
	f.Fuzz(func(t *testing.T, userTpl, aliasTpl, email, userName, group, approval, state string) {
		m := DefaultMapping()
		m.Username, m.Alias2 = userTpl, aliasTpl
		m.GroupsSeparator = ";"
		b, err := NewBuilder(m, Filter{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "mapping.") {
				t.Fatalf("mapping error does not name its key: %v", err)
			}
			return
		}
		rows := 0
		for i, e := range []string{email, strings.ToUpper(email), email} {
			r := person("RITM"+string(rune('0'+i)), userName, e, group)
			r.Fields["approval"], r.Fields["state"] = approval, state
			r.Origin = source.Origin{File: "f.csv", Line: i + 2}
			if err := b.Add(r); err != nil {
				if !strings.HasPrefix(err.Error(), "mapping.") {
					t.Fatalf("Add error does not name its key: %v", err)
				}
				return
			}
			rows++
		}
		b.AddProblem(source.Problem{File: "f.csv", Line: 9, Reason: "bad_quote"})
		d := b.Finish()
		c := d.Counts
		sum := c.Provision + c.Invalid()
		for _, n := range c.Skip {
			sum += n
		}
		if c.Rows != rows+1 || sum != c.Rows {
			t.Fatalf("rows %d, provision %d + skip %v + reject %v = %d", c.Rows, c.Provision, c.Skip, c.Reject, sum)
		}
		for _, u := range d.Users {
			if u.Key != Normalize(u.Username) || u.Username == "" || hasControl(u.Username) || checkEmail(u.Email) != nil {
				t.Fatalf("invalid user slipped through: %+v", u)
			}
		}
		// And the plan of it renders.
		var sb strings.Builder
		if err := Render(&sb, Diff(Have{}, d, nil, DefaultPolicy(), now)); err != nil {
			t.Fatal(err)
		}
	})
}
