package sync

import (
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// GuardError is a guard that tripped: nothing may be written.
type GuardError struct {
	Guard   string // "max_creates", "max_changes", "max_invalid"
	Limit   Limit
	Count   int    // what the plan would do
	Base    int    // what a percent is of (existing users, rows read)
	Allowed int    // the limit in numbers
	What    string // "users to create"
	BaseOf  string // "existing Duo users"
}

// what is What in the singular when Count is 1.
func (e *GuardError) what() string {
	if e.Count != 1 {
		return e.What
	}
	switch e.What {
	case "users to create":
		return "user to create"
	case "changes":
		return "change"
	case "invalid rows":
		return "invalid row"
	}
	return e.What
}

var numbers = message.NewPrinter(language.English)

func (e *GuardError) Error() string {
	limit := numbers.Sprintf("the limit of %d", e.Allowed)
	if e.Limit.percent {
		limit = numbers.Sprintf("%s of %d %s (%d)", e.Limit, e.Base, e.BaseOf, e.Allowed)
	}
	return numbers.Sprintf("%s: %d %s exceeds %s; use --force to override", e.Guard, e.Count, e.what(), limit)
}

// CheckGuards applies the policy's guards to a plan before any write. It
// returns the first guard that trips, as a *GuardError. With force no error
// is returned, and the guards that would have tripped come back as
// overridden, for the report to say so.
func CheckGuards(plan Plan, desired Desired, totalDuoUsers int, p Policy, force bool) (overridden []*GuardError, err error) {
	s := plan.Summary()
	invalid := desired.Counts.Invalid()
	checks := []*GuardError{
		{Guard: "max_creates", Limit: p.MaxCreates, Count: s.UsersToCreate, Base: totalDuoUsers, What: "users to create", BaseOf: "existing Duo users"},
		{Guard: "max_changes", Limit: p.MaxChanges, Count: s.Total(), Base: s.Total(), What: "changes", BaseOf: "changes"},
		{Guard: "max_invalid", Limit: p.MaxInvalid, Count: invalid, Base: desired.Counts.Rows, What: "invalid rows", BaseOf: "rows read"},
	}
	for _, g := range checks {
		if !g.Limit.Exceeded(g.Count, g.Base) {
			continue
		}
		g.Allowed = g.Limit.Allowed(g.Base)
		if !force {
			return nil, g
		}
		overridden = append(overridden, g)
	}
	return overridden, nil
}

// GuardsOverridden describes, for the report, the guards --force overrode:
// "max_creates: 2,000 users to create exceeds 10% of 1,000 existing Duo
// users (100)"; "" for none.
func GuardsOverridden(gs []*GuardError) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = strings.TrimSuffix(g.Error(), "; use --force to override")
	}
	return strings.Join(parts, "; ")
}
