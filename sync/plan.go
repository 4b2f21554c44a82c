package sync

import (
	"github.com/duosync/duosync/source"
)

// ActionKind names what one action writes. The values are the journal's
// kinds and stable in saved plans.
type ActionKind string

const (
	CreateGroup   ActionKind = "create_group"
	CreateUser    ActionKind = "create_user"
	UpdateUser    ActionKind = "update_user"
	Enroll        ActionKind = "enroll"
	AddMembership ActionKind = "add_membership"
)

func (k ActionKind) valid() bool {
	switch k {
	case CreateGroup, CreateUser, UpdateUser, Enroll, AddMembership:
		return true
	}
	return false
}

// Action is one Duo write. Actions of a user that does not exist yet carry
// no UserID; apply fills it from the create. A membership of a group created
// by the same plan carries no GroupID.
type Action struct {
	Kind     ActionKind `json:"kind"`
	Username string     `json:"username,omitempty"` // the Duo username (as it is, or will be, in Duo)
	// Key is the normalised username the requests map to: the identity the
	// journal and the fingerprint know the user by. It differs from
	// Normalize(Username) only for a Duo user matched by an alias.
	Key       string        `json:"key,omitempty"`
	UserID    string        `json:"user_id,omitempty"`
	Group     string        `json:"group,omitempty"`
	GroupID   string        `json:"group_id,omitempty"`
	Email     string        `json:"email,omitempty"`      // enroll: where the email goes
	ValidSecs int           `json:"valid_secs,omitempty"` // enroll: link validity
	NewUser   *UserFields   `json:"new_user,omitempty"`   // create_user
	Changes   []FieldChange `json:"changes,omitempty"`    // update_user
	Reason    string        `json:"reason"`
	Requests  []string      `json:"requests,omitempty"` // RITM numbers served
}

// UserFields are the fields of a user to create.
type UserFields struct {
	Username  string   `json:"username"`
	Email     string   `json:"email,omitempty"`
	Realname  string   `json:"realname,omitempty"`
	Firstname string   `json:"firstname,omitempty"`
	Lastname  string   `json:"lastname,omitempty"`
	Aliases   []string `json:"aliases,omitempty"`
	Notes     string   `json:"notes,omitempty"`
}

// FieldChange is one attribute that differs between Duo and the requests.
type FieldChange struct {
	Field string `json:"field"` // email, realname, firstname, lastname, aliases
	Have  string `json:"have"`
	Want  string `json:"want"`
}

// Plan is what a run would write, and why; a plain value that prints and
// serialises. Actions are ordered: groups to create first, then per user
// (by normalised username) its create, update, enrollment and memberships.
type Plan struct {
	Actions   []Action         `json:"actions"`
	Blocked   []Blocked        `json:"blocked,omitempty"`
	Conflicts []Conflict       `json:"conflicts,omitempty"`
	Drift     []Drift          `json:"drift,omitempty"`
	Pending   []PendingEnroll  `json:"pending_enrollments,omitempty"`
	Errors    []PlanError      `json:"errors,omitempty"`
	Invalid   []source.Problem `json:"invalid,omitempty"`
	Requests  []RequestPlan    `json:"requests"`
	Warnings  []string         `json:"warnings,omitempty"`
	Counts    Counts           `json:"counts"`
	InSync    int              `json:"in_sync"` // desired users with nothing to do
	// Unexplained counts, per requested group, the members no request asks
	// for (Drift lists at most 100 of them per group).
	Unexplained map[string]int `json:"unexplained_members,omitempty"`
	Depends     Fingerprint    `json:"depends"`
}

// Blocked is an existing Duo user that must not be touched.
type Blocked struct {
	Username string   `json:"username"`
	UserID   string   `json:"user_id"`
	Status   string   `json:"status"`
	Requests []string `json:"requests"`
	Detail   string   `json:"detail"`
}

// Drift is a difference between Duo and the requests that duosync reports
// and does not write.
type Drift struct {
	Kind     string `json:"kind"` // "attribute", "unexplained_member"
	Username string `json:"username"`
	UserID   string `json:"user_id,omitempty"`
	Group    string `json:"group,omitempty"`
	Field    string `json:"field,omitempty"`
	Have     string `json:"have,omitempty"`
	Want     string `json:"want,omitempty"`
	Detail   string `json:"detail"`
}

// PendingEnroll is an unenrolled user whose enrollment email is not re-sent.
type PendingEnroll struct {
	Username string   `json:"username"`
	Requests []string `json:"requests"`
	Detail   string   `json:"detail"`
}

// PlanError is a request that cannot be served as asked (e.g. a missing group).
type PlanError struct {
	Username string   `json:"username"`
	Group    string   `json:"group,omitempty"`
	Requests []string `json:"requests"`
	Detail   string   `json:"detail"`
}

// Request outcomes in plans and results.
const (
	OutcomeChange     = "change"  // plan: actions pending
	OutcomeInSync     = "in_sync" // plan: nothing to do
	OutcomeOK         = "ok"
	OutcomeFailed     = "failed"
	OutcomeUnknown    = "unknown" // an action's answer never came
	OutcomeBlocked    = "blocked"
	OutcomeConflict   = "conflict"
	OutcomeSkipped    = "skipped"
	OutcomeInvalid    = "invalid"
	OutcomeError      = "error" // plan: cannot be served as asked
	OutcomeNotStarted = "not_started"
)

// RequestPlan is what the plan means for one request (RITM).
type RequestPlan struct {
	Request  string   `json:"request"`
	Username string   `json:"username,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Actions  []string `json:"actions,omitempty"` // kinds, in order
	Groups   []string `json:"groups,omitempty"`  // the groups of its add_membership actions
	Outcome  string   `json:"outcome"`
	Detail   string   `json:"detail,omitempty"`
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
}

// Summary counts a plan's actions by kind.
type Summary struct {
	GroupsToCreate int `json:"groups_to_create"`
	UsersToCreate  int `json:"users_to_create"`
	UsersToUpdate  int `json:"users_to_update"`
	Enrollments    int `json:"enrollments"`
	Memberships    int `json:"memberships"`
}

// Total is the number of actions.
func (s Summary) Total() int {
	return s.GroupsToCreate + s.UsersToCreate + s.UsersToUpdate + s.Enrollments + s.Memberships
}

// Summary counts the plan's actions.
func (p Plan) Summary() Summary {
	var s Summary
	for _, a := range p.Actions {
		switch a.Kind {
		case CreateGroup:
			s.GroupsToCreate++
		case CreateUser:
			s.UsersToCreate++
		case UpdateUser:
			s.UsersToUpdate++
		case Enroll:
			s.Enrollments++
		case AddMembership:
			s.Memberships++
		}
	}
	return s
}

// UserKey is the action's identity key (see Action.Key).
func (a Action) UserKey() string {
	if a.Key != "" {
		return a.Key
	}
	return Normalize(a.Username)
}

// HasChanges reports whether applying the plan would write anything.
func (p Plan) HasChanges() bool { return len(p.Actions) > 0 }
