package sync

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/duosync/duosync/duo"
)

// Have is what Duo holds, as read for one run.
type Have struct {
	Users  []duo.User  // the users that can match the desired ones (or all)
	Groups []duo.Group // every group
	Total  int         // users in the account, for percent guards
}

// Duo user statuses that must never be written to.
var blockedStatuses = map[string]bool{"disabled": true, "locked out": true, "pending deletion": true}

// Diff compares what the requests want with what Duo has and returns the
// plan. It is pure: the same inputs give the same plan. history is the
// journal's enrollment emails by normalised username (nil for none).
//
// Existing users are never re-created, blocked users never touched, only
// missing memberships added, and nothing is ever removed.
func Diff(have Have, want Desired, history map[string]EnrollmentHistory, p Policy, now time.Time) Plan {
	d := differ{
		users:   newUserIndex(have.Users),
		groups:  newGroupIndex(have.Groups),
		history: history,
		policy:  p,
		now:     now,
		plan: Plan{
			Conflicts: slices.Clone(want.Conflicts),
			Invalid:   want.Invalid,
			Warnings:  want.Warnings,
			Counts:    want.Counts,
		},
		reqs:      map[string]*RequestPlan{},
		explained: map[[2]string]bool{},
		managed:   map[string]string{},
	}
	d.sharedMatches(want.Users)
	var userActions []Action
	for _, u := range want.Users {
		userActions = append(userActions, d.user(u)...)
	}
	// Groups to create go first: memberships depend on them.
	d.plan.Actions = make([]Action, 0, len(d.groupActions)+len(userActions))
	d.plan.Actions = append(d.plan.Actions, d.groupActions...)
	d.plan.Actions = append(d.plan.Actions, userActions...)
	d.unexplainedMembers(have.Users)
	d.plan.Depends = fingerprint(d.users, d.groups, want)
	d.requests(want)
	return d.plan
}

type differ struct {
	users     userIndex
	groups    groupIndex
	history   map[string]EnrollmentHistory
	policy    Policy
	now       time.Time
	plan      Plan
	reqs      map[string]*RequestPlan
	explained map[[2]string]bool // (user id, group id) pairs some request asks for
	managed   map[string]string  // group id → name, of groups requests ask for

	groupActions []Action
	groupCreate  map[string]int      // lower-cased name → index in groupActions
	shared       map[string][]string // Duo user id → desired usernames, when several match it
}

// sharedMatches finds Duo users that several desired users match (one by
// username, another by alias): applying both would write one person twice.
func (d *differ) sharedMatches(users []DesiredUser) {
	byID := map[string][]string{}
	for _, u := range users {
		if du, _ := d.users.match(u.Key); du != nil {
			byID[du.ID] = append(byID[du.ID], u.Username)
		}
	}
	for id, names := range byID {
		if len(names) > 1 {
			if d.shared == nil {
				d.shared = map[string][]string{}
			}
			d.shared[id] = names
		}
	}
}

// userIndex finds Duo users by normalised username and by alias.
type userIndex struct {
	users   []duo.User
	byName  map[string]int
	byAlias map[string]int // -1: several users share the alias
}

func newUserIndex(users []duo.User) userIndex {
	ix := userIndex{users: users, byName: make(map[string]int, len(users)), byAlias: make(map[string]int, 2*len(users))}
	for i := range users {
		u := &users[i]
		ix.byName[Normalize(u.Username)] = i
		for _, a := range u.Aliases {
			k := Normalize(a)
			if k == "" {
				continue
			}
			if j, ok := ix.byAlias[k]; ok && j != i {
				ix.byAlias[k] = -1
			} else {
				ix.byAlias[k] = i
			}
		}
	}
	return ix
}

// match finds the Duo user for a normalised name: by username first, then by
// alias. Several users sharing the alias come back as ambiguous.
func (ix userIndex) match(key string) (u *duo.User, ambiguous []duo.User) {
	if i, ok := ix.byName[key]; ok {
		return &ix.users[i], nil
	}
	i, ok := ix.byAlias[key]
	switch {
	case !ok:
		return nil, nil
	case i >= 0:
		return &ix.users[i], nil
	}
	for _, u := range ix.users { // rare: find who shares the alias
		if slices.ContainsFunc(u.Aliases, func(a string) bool { return Normalize(a) == key }) {
			ambiguous = append(ambiguous, u)
		}
	}
	return nil, ambiguous
}

// groupIndex finds Duo groups by name, exactly or else case-insensitively.
type groupIndex struct {
	exact map[string][]duo.Group
	fold  map[string][]duo.Group
}

func newGroupIndex(groups []duo.Group) groupIndex {
	ix := groupIndex{exact: map[string][]duo.Group{}, fold: map[string][]duo.Group{}}
	for _, g := range groups {
		ix.exact[g.Name] = append(ix.exact[g.Name], g)
		k := strings.ToLower(strings.TrimSpace(g.Name))
		ix.fold[k] = append(ix.fold[k], g)
	}
	return ix
}

func (ix groupIndex) find(name string) (g duo.Group, found bool, ambiguous int) {
	if gs := ix.exact[name]; len(gs) == 1 {
		return gs[0], true, 0
	} else if len(gs) > 1 {
		return duo.Group{}, false, len(gs)
	}
	switch gs := ix.fold[strings.ToLower(strings.TrimSpace(name))]; len(gs) {
	case 0:
		return duo.Group{}, false, 0
	case 1:
		return gs[0], true, 0
	default:
		return duo.Group{}, false, len(gs)
	}
}

// user plans one desired user.
func (d *differ) user(u DesiredUser) []Action {
	du, ambiguous := d.users.match(u.Key)
	if len(ambiguous) > 0 {
		names := make([]string, len(ambiguous))
		for i, a := range ambiguous {
			names[i] = a.Username
		}
		d.plan.Conflicts = append(d.plan.Conflicts, Conflict{
			Username: u.Username, Field: "duo_user", Values: names, Requests: u.Requests,
			Detail: fmt.Sprintf("%s matches several Duo users by alias (%s); none of its requests is applied", u.Username, strings.Join(names, ", ")),
		})
		return nil
	}
	if du == nil {
		return d.newUser(u)
	}
	if names, ok := d.shared[du.ID]; ok {
		d.plan.Conflicts = append(d.plan.Conflicts, Conflict{
			Username: u.Username, Field: "duo_user", Values: names, Requests: u.Requests,
			Detail: fmt.Sprintf("Duo user %s (%s) matches several requested users (%s) by username or alias; none of their requests is applied", du.Username, du.ID, strings.Join(names, ", ")),
		})
		return nil
	}
	return d.existingUser(u, *du)
}

func (d *differ) newUser(u DesiredUser) []Action {
	// An alias that already belongs to another Duo user would make the
	// create fail, or worse, merge two people: a human must look.
	for _, a := range u.Aliases {
		if other, _ := d.users.match(Normalize(a)); other != nil {
			d.plan.Conflicts = append(d.plan.Conflicts, Conflict{
				Username: u.Username, Field: "aliases", Values: []string{a, other.Username}, Requests: u.Requests,
				Detail: fmt.Sprintf("%s is not in Duo, but its alias %s already belongs to Duo user %s (%s); none of its requests is applied", u.Username, a, other.Username, other.ID),
			})
			return nil
		}
	}
	acts := []Action{{
		Kind: CreateUser, Username: u.Username, Key: u.Key, Reason: "not in Duo", Requests: u.Requests,
		NewUser: &UserFields{Username: u.Username, Email: u.Email, Realname: u.Realname, Firstname: u.Firstname,
			Lastname: u.Lastname, Aliases: u.Aliases, Notes: u.Notes},
	}}
	if a, ok := d.enroll(u, u.Username, "new user"); ok {
		acts = append(acts, a)
	}
	for _, m := range u.Memberships {
		if a, ok := d.membership(u, nil, m); ok {
			acts = append(acts, a)
		}
	}
	return acts
}

func (d *differ) existingUser(u DesiredUser, du duo.User) []Action {
	if status := strings.ToLower(du.Status); blockedStatuses[status] {
		detail := fmt.Sprintf("Duo user %s (%s) is %s", du.Username, du.ID, status)
		if du.LockoutReason != "" {
			detail += " (" + du.LockoutReason + ")"
		}
		d.plan.Blocked = append(d.plan.Blocked, Blocked{Username: du.Username, UserID: du.ID, Status: du.Status,
			Requests: u.Requests, Detail: detail + "; duosync never touches it"})
		return nil
	}
	var acts []Action
	if changes, detail := attributeChanges(u, du); len(changes) > 0 {
		fields := make([]string, len(changes))
		for i, c := range changes {
			fields[i] = c.Field
		}
		if d.policy.UpdateExisting && detail == "" {
			acts = append(acts, Action{Kind: UpdateUser, Username: du.Username, Key: u.Key, UserID: du.ID, Changes: changes,
				Reason: "differs from the requests: " + strings.Join(fields, ", "), Requests: u.Requests})
		} else {
			for _, c := range changes {
				det := fmt.Sprintf("%s of %s is %q in Duo, the requests say %q", c.Field, du.Username, c.Have, c.Want)
				if detail != "" {
					det += "; " + detail
				} else {
					det += "; not written (update_existing is off)"
				}
				d.plan.Drift = append(d.plan.Drift, Drift{Kind: "attribute", Username: du.Username, UserID: du.ID,
					Field: c.Field, Have: c.Have, Want: c.Want, Detail: det})
			}
		}
	}
	if !du.IsEnrolled {
		if a, ok := d.enroll(u, du.Username, "not enrolled in Duo"); ok {
			a.UserID = du.ID
			acts = append(acts, a)
		}
	}
	for _, m := range u.Memberships {
		if a, ok := d.membership(u, &du, m); ok {
			acts = append(acts, a)
		}
	}
	if len(acts) == 0 && !d.hasErrors(u) {
		d.plan.InSync++
	}
	return acts
}

func (d *differ) hasErrors(u DesiredUser) bool {
	for _, e := range d.plan.Errors {
		if e.Username == u.Username {
			return true
		}
	}
	return false
}

// attributeChanges lists the fields the requests set that differ in Duo.
// A non-empty detail says why the change cannot be written.
func attributeChanges(u DesiredUser, du duo.User) (changes []FieldChange, detail string) {
	if u.Email != "" && !strings.EqualFold(u.Email, du.Email) {
		changes = append(changes, FieldChange{Field: "email", Have: du.Email, Want: u.Email})
	}
	for _, f := range []struct{ name, have, want string }{
		{"realname", du.Realname, u.Realname},
		{"firstname", du.Firstname, u.Firstname},
		{"lastname", du.Lastname, u.Lastname},
	} {
		if f.want != "" && f.want != f.have {
			changes = append(changes, FieldChange{Field: f.name, Have: f.have, Want: f.want})
		}
	}
	// Aliases only ever grow: the ones Duo has are kept, missing ones added.
	merged := slices.Clone(du.Aliases)
	for _, a := range u.Aliases {
		k := Normalize(a)
		if k == Normalize(du.Username) || slices.ContainsFunc(merged, func(x string) bool { return Normalize(x) == k }) {
			continue
		}
		merged = append(merged, a)
	}
	if len(merged) > len(du.Aliases) {
		changes = append(changes, FieldChange{Field: "aliases", Have: strings.Join(du.Aliases, ", "), Want: strings.Join(merged, ", ")})
		if len(merged) > 4 {
			detail = "Duo holds at most 4 aliases, so the missing ones cannot be added"
		}
	}
	return changes, detail
}

// enroll decides on an enrollment email, from the journal's history and the
// resend policy. Unconfirmed sends count as sent.
func (d *differ) enroll(u DesiredUser, duoUsername, why string) (Action, bool) {
	if !d.policy.Enroll {
		return Action{}, false
	}
	h := d.history[u.Key]
	reason := why
	if h.Count > 0 {
		ago := humanDuration(d.now.Sub(h.Last))
		switch {
		case h.Count > d.policy.MaxResends:
			d.plan.Pending = append(d.plan.Pending, PendingEnroll{Username: duoUsername, Requests: u.Requests,
				Detail: fmt.Sprintf("not enrolled; %d enrollment emails sent, the last %s ago; max_resends (%d) reached, so none is re-sent", h.Count, ago, d.policy.MaxResends)})
			return Action{}, false
		case d.now.Sub(h.Last) < d.policy.ResendAfter:
			d.plan.Pending = append(d.plan.Pending, PendingEnroll{Username: duoUsername, Requests: u.Requests,
				Detail: fmt.Sprintf("not enrolled; enrollment email sent %s ago; not re-sent before resend_after (%s)", ago, humanDuration(d.policy.ResendAfter))})
			return Action{}, false
		}
		reason = fmt.Sprintf("%s %s after the last enrollment email (resend %d of %d)", why, ago, h.Count, d.policy.MaxResends)
	}
	return Action{Kind: Enroll, Username: duoUsername, Key: u.Key, Email: u.Email, ValidSecs: d.policy.EnrollValidSecs,
		Reason: reason, Requests: u.Requests}, true
}

// membership plans one requested group for a user (du nil: a new user).
func (d *differ) membership(u DesiredUser, du *duo.User, m Membership) (Action, bool) {
	g, found, ambiguous := d.groups.find(m.Group)
	username := u.Username
	if du != nil {
		username = du.Username
	}
	if ambiguous > 0 {
		d.plan.Errors = append(d.plan.Errors, PlanError{Username: u.Username, Group: m.Group, Requests: m.Requests,
			Detail: fmt.Sprintf("%d Duo groups are named %q: add %s by hand", ambiguous, m.Group, username)})
		return Action{}, false
	}
	if !found {
		if !d.policy.CreateMissingGroups {
			d.plan.Errors = append(d.plan.Errors, PlanError{Username: u.Username, Group: m.Group, Requests: m.Requests,
				Detail: fmt.Sprintf("Duo group %q does not exist (create_missing_groups is off)", m.Group)})
			return Action{}, false
		}
		d.createGroup(m)
		return Action{Kind: AddMembership, Username: username, Key: u.Key, Group: m.Group,
			Reason: "group created by this plan", Requests: m.Requests}, true
	}
	d.managed[g.ID] = g.Name
	if du != nil {
		d.explained[[2]string{du.ID, g.ID}] = true
		if slices.ContainsFunc(du.Groups, func(x duo.Group) bool { return x.ID == g.ID }) {
			return Action{}, false
		}
	}
	a := Action{Kind: AddMembership, Username: username, Key: u.Key, Group: g.Name, GroupID: g.ID, Reason: "not a member", Requests: m.Requests}
	if du != nil {
		a.UserID = du.ID
	} else {
		a.Reason = "new user"
	}
	return a, true
}

func (d *differ) createGroup(m Membership) {
	if d.groupCreate == nil {
		d.groupCreate = map[string]int{}
	}
	k := strings.ToLower(strings.TrimSpace(m.Group))
	if i, ok := d.groupCreate[k]; ok {
		for _, r := range m.Requests {
			if !slices.Contains(d.groupActions[i].Requests, r) {
				d.groupActions[i].Requests = append(d.groupActions[i].Requests, r)
			}
		}
		return
	}
	d.groupCreate[k] = len(d.groupActions)
	d.groupActions = append(d.groupActions, Action{Kind: CreateGroup, Group: m.Group,
		Reason: "missing in Duo; create_missing_groups is on", Requests: slices.Clone(m.Requests)})
}

// maxDriftMembers caps the unexplained members listed per group: a large
// shared group would otherwise bury the plan and the report.
const maxDriftMembers = 100

// unexplainedMembers reports members of requested groups that no request
// asks for: drift, never removed. It sees only the users that were read.
func (d *differ) unexplainedMembers(users []duo.User) {
	if len(d.managed) == 0 {
		return
	}
	count := map[string]int{} // group id → unexplained members
	for _, u := range users {
		for _, g := range u.Groups {
			name, ok := d.managed[g.ID]
			if !ok || d.explained[[2]string{u.ID, g.ID}] {
				continue
			}
			count[g.ID]++
			if count[g.ID] > maxDriftMembers {
				continue
			}
			d.plan.Drift = append(d.plan.Drift, Drift{Kind: "unexplained_member", Username: u.Username, UserID: u.ID, Group: name,
				Detail: fmt.Sprintf("%s is in group %q but no approved request asks for it; not removed (duosync never removes)", u.Username, name)})
		}
	}
	ids := make([]string, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		name, n := d.managed[id], count[id]
		if d.plan.Unexplained == nil {
			d.plan.Unexplained = map[string]int{}
		}
		d.plan.Unexplained[name] = n
		if n > maxDriftMembers {
			d.plan.Drift = append(d.plan.Drift, Drift{Kind: "unexplained_member", Group: name,
				Detail: fmt.Sprintf("and %d more members of group %q that no approved request asks for (%d in all); not removed", n-maxDriftMembers, name, n)})
		}
	}
}

// requests derives the per-request view of the plan. A RITM maps to one
// user; records repeated in overlapping exports keep the first outcome.
func (d *differ) requests(want Desired) {
	get := func(ritm, username string) *RequestPlan {
		rp, ok := d.reqs[ritm]
		if !ok {
			rp = &RequestPlan{Request: ritm, Username: username}
			if o, ok := want.Requests[ritm]; ok {
				rp.File, rp.Line = o.File, o.Line
			}
			d.reqs[ritm] = rp
		}
		return rp
	}
	for _, u := range want.Users {
		for _, r := range u.Requests {
			rp := get(r, u.Username)
			rp.Outcome = OutcomeInSync
			rp.Detail = "already in sync"
		}
	}
	for _, a := range d.plan.Actions {
		if a.Kind == CreateGroup {
			continue
		}
		for _, r := range a.Requests {
			rp := get(r, a.Username)
			rp.Actions = append(rp.Actions, string(a.Kind))
			if a.Kind == AddMembership {
				rp.Groups = append(rp.Groups, a.Group)
			}
			rp.Outcome, rp.Detail = OutcomeChange, ""
			if a.UserID != "" {
				rp.UserID = a.UserID
			}
		}
	}
	for _, pe := range d.plan.Pending {
		for _, r := range pe.Requests {
			if rp := get(r, pe.Username); rp.Outcome == OutcomeInSync {
				rp.Detail = pe.Detail
			}
		}
	}
	for _, e := range d.plan.Errors {
		for _, r := range e.Requests {
			rp := get(r, e.Username)
			rp.Outcome, rp.Detail = OutcomeError, e.Detail
		}
	}
	for _, b := range d.plan.Blocked {
		for _, r := range b.Requests {
			rp := get(r, b.Username)
			rp.Outcome, rp.Detail, rp.UserID = OutcomeBlocked, b.Detail, b.UserID
		}
	}
	for _, c := range d.plan.Conflicts {
		for _, r := range c.Requests {
			rp := get(r, c.Username)
			rp.Outcome, rp.Detail = OutcomeConflict, c.Detail
		}
	}
	for _, s := range want.Skipped {
		if _, ok := d.reqs[s.Request]; ok {
			continue
		}
		rp := get(s.Request, "")
		rp.Outcome, rp.Detail = OutcomeSkipped, skipDetail(s.Reason)
		rp.File, rp.Line = s.File, s.Line
	}
	out := make([]RequestPlan, 0, len(d.reqs))
	for _, rp := range d.reqs {
		out = append(out, *rp)
	}
	slices.SortFunc(out, func(a, b RequestPlan) int { return strings.Compare(a.Request, b.Request) })
	d.plan.Requests = out
}

// humanDuration writes 26h as "1d 2h" and 90m as "1h 30m".
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	if hours > 0 {
		parts = append(parts, fmt.Sprintf("%dh", hours))
	}
	if mins > 0 && days == 0 {
		parts = append(parts, fmt.Sprintf("%dm", mins))
	}
	return strings.Join(parts, " ")
}

// skipDetail says a skip reason for a person.
func skipDetail(reason string) string {
	switch reason {
	case SkipNotApproved:
		return "skipped: not approved"
	case SkipClosedIncomplete:
		return "skipped: closed incomplete"
	case SkipClosedSkipped:
		return "skipped: closed skipped"
	case SkipOtherCatalogItem:
		return "skipped: another catalog item (see source.catalog_items)"
	case SkipRequesterInactive:
		return "skipped: the requester is inactive in ServiceNow"
	case SkipDuplicate:
		return "skipped: identical to an earlier record"
	}
	return "skipped: " + reason
}
