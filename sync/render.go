package sync

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Symbols of the plan text, Terraform style.
var symbols = []struct {
	kind   ActionKind
	symbol string
	legend string
}{
	{CreateGroup, "+", "create"},
	{CreateUser, "+", "create"},
	{UpdateUser, "~", "update in place"},
	{Enroll, ">", "send an enrollment email"},
	{AddMembership, "=", "add to a group"},
}

// SummaryLine is the plan's last line, e.g. "Plan: 7 users to create, 7
// enrollments to send, 9 memberships to add." or "No changes. Duo matches
// the approved requests."
func SummaryLine(p Plan) string {
	s := p.Summary()
	if s.Total() == 0 {
		return "No changes. Duo matches the approved requests."
	}
	var parts []string
	if s.GroupsToCreate > 0 {
		parts = append(parts, plural(s.GroupsToCreate, "group", "groups")+" to create")
	}
	parts = append(parts, plural(s.UsersToCreate, "user", "users")+" to create")
	if s.UsersToUpdate > 0 {
		parts = append(parts, plural(s.UsersToUpdate, "user", "users")+" to update")
	}
	parts = append(parts,
		plural(s.Enrollments, "enrollment", "enrollments")+" to send",
		plural(s.Memberships, "membership", "memberships")+" to add")
	return "Plan: " + strings.Join(parts, ", ") + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Render writes the plan for a person: a legend of the symbols in use, the
// actions grouped per user with their reasons, what needs a human (blocked,
// conflicts, errors, invalid rows), drift, and the summary line.
func Render(w io.Writer, p Plan) error {
	bw := bufio.NewWriter(w)
	r := renderer{w: bw}
	r.render(p)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

type renderer struct{ w io.Writer }

func (r renderer) line(format string, args ...any) {
	fmt.Fprintf(r.w, format+"\n", args...)
}

func (r renderer) render(p Plan) {
	for _, w := range p.Warnings {
		r.line("WARNING: %s", w)
	}
	if len(p.Warnings) > 0 {
		r.line("")
	}
	if len(p.Actions) > 0 {
		r.legend(p)
		r.actions(p)
	}
	r.section("Blocked (Duo users duosync never touches; a human must decide)", len(p.Blocked), func(i int) string {
		b := p.Blocked[i]
		return fmt.Sprintf("%s (%s): %s", b.Username, strings.Join(b.Requests, ", "), b.Detail)
	})
	r.section("Conflicts (these requests disagree and are not applied)", len(p.Conflicts), func(i int) string {
		c := p.Conflicts[i]
		return fmt.Sprintf("%s (%s): %s", c.Username, strings.Join(c.Requests, ", "), c.Detail)
	})
	r.section("Errors (these requests cannot be served as asked)", len(p.Errors), func(i int) string {
		e := p.Errors[i]
		return fmt.Sprintf("%s (%s): %s", e.Username, strings.Join(e.Requests, ", "), e.Detail)
	})
	r.section("Invalid rows (skipped)", len(p.Invalid), func(i int) string {
		return p.Invalid[i].Error()
	})
	r.section("Enrollment emails not re-sent", len(p.Pending), func(i int) string {
		e := p.Pending[i]
		return fmt.Sprintf("%s (%s): %s", e.Username, strings.Join(e.Requests, ", "), e.Detail)
	})
	r.section("Drift (reported, never written)", len(p.Drift), func(i int) string {
		return p.Drift[i].Detail
	})
	if p.InSync > 0 {
		r.line("%s already in sync.", plural(p.InSync, "user is", "users are"))
		r.line("")
	}
	r.line("%s", SummaryLine(p))
}

func (r renderer) legend(p Plan) {
	r.line("duosync will make these changes in Duo. Actions are marked:")
	used := map[ActionKind]bool{}
	for _, a := range p.Actions {
		used[a.Kind] = true
	}
	shown := map[string]bool{}
	for _, s := range symbols {
		if used[s.kind] && !shown[s.symbol] {
			shown[s.symbol] = true
			r.line("  %s %s", s.symbol, s.legend)
		}
	}
	r.line("")
}

// actions prints groups to create, then one block per user.
func (r renderer) actions(p Plan) {
	var cur string
	for i, a := range p.Actions {
		if a.Kind == CreateGroup {
			r.line("# group %q will be created", a.Group)
			r.line("  + group %q  (%s; for %s)", a.Group, a.Reason, strings.Join(a.Requests, ", "))
			r.line("")
			continue
		}
		if key := a.UserKey(); key != cur {
			cur = key
			r.line("# %s", userHeading(p.Actions[i:], a))
		}
		switch a.Kind {
		case CreateUser:
			r.line("  + user %s  (%s)", a.Username, a.Reason)
			for _, f := range newUserLines(a.NewUser) {
				r.line("      %s", f)
			}
		case UpdateUser:
			r.line("  ~ user %s  (%s)", a.Username, a.Reason)
			for _, c := range a.Changes {
				r.line("      %s: %q -> %q", c.Field, c.Have, c.Want)
			}
		case Enroll:
			r.line("  > enroll %s: email %s  (%s)", a.Username, a.Email, a.Reason)
		case AddMembership:
			r.line("  = add %s to group %q  (%s; %s)", a.Username, a.Group, a.Reason, strings.Join(a.Requests, ", "))
		}
		if i+1 == len(p.Actions) || p.Actions[i+1].UserKey() != cur {
			r.line("")
		}
	}
}

// userHeading says what happens to a user, for the first of its actions.
func userHeading(rest []Action, first Action) string {
	var reqs []string
	key := first.UserKey()
	for _, a := range rest {
		if a.UserKey() != key {
			break
		}
		for _, q := range a.Requests {
			if !containsString(reqs, q) {
				reqs = append(reqs, q)
			}
		}
	}
	what := fmt.Sprintf("user %s (in Duo as %s)", first.Username, first.UserID)
	if first.Kind == CreateUser {
		what = fmt.Sprintf("user %s will be created", first.Username)
	} else if first.UserID == "" {
		what = fmt.Sprintf("user %s", first.Username)
	}
	return fmt.Sprintf("%s, for %s", what, strings.Join(reqs, ", "))
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func newUserLines(u *UserFields) []string {
	if u == nil {
		return nil
	}
	var out []string
	add := func(k, v string) {
		if v != "" {
			out = append(out, fmt.Sprintf("%-10s %s", k+":", v))
		}
	}
	add("email", u.Email)
	add("realname", u.Realname)
	add("firstname", u.Firstname)
	add("lastname", u.Lastname)
	add("aliases", strings.Join(u.Aliases, ", "))
	add("notes", u.Notes)
	return out
}

// section prints a titled list, nothing when it is empty.
func (r renderer) section(title string, n int, item func(i int) string) {
	if n == 0 {
		return
	}
	const show = 50 // a human reads the rest in the report
	r.line("%s:", title)
	for i := 0; i < n && i < show; i++ {
		r.line("  - %s", item(i))
	}
	if n > show {
		r.line("  ... and %d more (see the report)", n-show)
	}
	r.line("")
}
