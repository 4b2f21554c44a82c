// Package report holds duosync's reconciliation report: a plain data model
// filled by the caller from a run (or read back from the journal's JSON), its
// renderers (text, CSV, JSON, HTML), writing them to disk, and emailing them.
//
// The model does not depend on the engine: the command converts the engine's
// result into a Report, so that the report can be re-rendered years later
// from its JSON without the code that produced it.
package report

import (
	"sort"
	"time"
)

// SchemaVersion is the version of the JSON schema written by WriteJSON and
// documented in docs/report-schema.md. Bump it on any incompatible change.
const SchemaVersion = 1

// Modes of a run.
const (
	ModePlan  = "PLAN"
	ModeApply = "APPLY"
)

// Outcomes of a request row. Renderers highlight the ones needing a human.
const (
	OutcomeApplied    = "applied"     // every action succeeded
	OutcomePlanned    = "planned"     // PLAN mode: actions would be taken
	OutcomeInSync     = "in sync"     // nothing to do
	OutcomePartial    = "partial"     // some actions succeeded, some failed
	OutcomeFailed     = "failed"      // every attempted action failed
	OutcomeBlocked    = "blocked"     // the Duo user is disabled, locked out or pending deletion
	OutcomeConflict   = "conflict"    // conflicting requests for one username
	OutcomeInvalid    = "invalid"     // the row could not be used
	OutcomeSkipped    = "skipped"     // not approved, another item, inactive requester, duplicate
	OutcomeNotStarted = "not started" // interrupted, a guard tripped or a read failed first
)

// Report is everything one run did or would do, for people and for audit.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	RunID         string `json:"run_id"`
	Mode          string `json:"mode"` // ModePlan or ModeApply

	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`

	Source  Source `json:"source"`
	DuoHost string `json:"duo_host"`
	Version string `json:"version"` // duosync's version

	// ExitStatus is a short word for the outcome ("ok", "changes pending",
	// "partial failure", "guard tripped", "error", "interrupted") and
	// ExitCode the process exit code of DESIGN.md.
	ExitStatus      string `json:"exit_status"`
	ExitCode        int    `json:"exit_code"`
	Interrupted     bool   `json:"interrupted"`
	GuardOverridden bool   `json:"guard_overridden"` // --force overrode a guard
	GuardTripped    string `json:"guard_tripped"`    // which guard stopped the run, "" if none
	// Error is the run's fatal error, if any (a failed read): why nothing
	// was applied.
	Error string `json:"error,omitempty"`

	Summary Summary `json:"summary"`

	Requests  []RequestRow  `json:"requests"`
	Invalid   []InvalidRow  `json:"invalid"`
	Blocked   []BlockedRow  `json:"blocked"`
	Conflicts []ConflictRow `json:"conflicts"`
	Drift     []DriftRow    `json:"drift"`
	Failures  []FailureRow  `json:"failures"`
	Warnings  []string      `json:"warnings"`

	// Email is filled after a delivery attempt; nil when none was made.
	Email *EmailStatus `json:"email,omitempty"`
}

// Source says where the requests came from.
type Source struct {
	Kind     string       `json:"kind"` // "csv" or "servicenow"
	Files    []SourceFile `json:"files,omitempty"`
	Instance string       `json:"instance,omitempty"` // ServiceNow instance URL
	Table    string       `json:"table,omitempty"`
	Query    string       `json:"query,omitempty"` // the encoded query used
}

// SourceFile is one CSV export read by the run.
type SourceFile struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Rows    int    `json:"rows"`
	Refused string `json:"refused,omitempty"` // why the whole file was rejected
}

// Summary holds the run's counts. In PLAN mode the action counts (Created,
// EnrollmentsSent, ...) are what the plan would do.
type Summary struct {
	RowsRead    int `json:"rows_read"`
	Valid       int `json:"valid"`
	Invalid     int `json:"invalid"`
	NotApproved int `json:"not_approved"` // every skipped row; by reason below
	// SkippedByReason counts skipped rows by a short reason code
	// ("not_approved", "closed_incomplete", "other_item", "inactive_requester", "duplicate").
	SkippedByReason map[string]int `json:"skipped_by_reason"`

	UsersDesired       int `json:"users_desired"`
	InSync             int `json:"in_sync"`
	Created            int `json:"created"`
	Updated            int `json:"updated"`
	EnrollmentsSent    int `json:"enrollments_sent"`
	EnrollmentsPending int `json:"enrollments_pending"` // not enrolled, email not re-sent yet
	MembershipsAdded   int `json:"memberships_added"`
	GroupsCreated      int `json:"groups_created"`
	Blocked            int `json:"blocked"`
	Conflicts          int `json:"conflicts"`
	Failed             int `json:"failed"` // failed actions

	APICalls    int `json:"api_calls"`
	Retries     int `json:"retries"`
	RateLimited int `json:"rate_limited"` // 429 answers
}

// RequestRow is one requested item (RITM) and what became of it.
type RequestRow struct {
	Number    string   `json:"number"` // RITM0010001
	Username  string   `json:"username"`
	Requester string   `json:"requester"` // requested_for.name, as ServiceNow gave it
	Email     string   `json:"email"`
	Groups    []string `json:"groups"`
	Actions   []string `json:"actions"` // "create", "enroll", "add MFA Users", ...
	Outcome   string   `json:"outcome"` // one of the Outcome constants
	DuoUserID string   `json:"duo_user_id"`
	Detail    string   `json:"detail"` // an error or an explanation, for a person
	File      string   `json:"file,omitempty"`
	Line      int      `json:"line,omitempty"`
}

// InvalidRow is a row or field that could not be used.
type InvalidRow struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column string `json:"column"`
	Reason string `json:"reason"` // a stable code: "invalid_email", ...
	Detail string `json:"detail"`
}

// BlockedRow is a Duo user duosync will not touch, and the requests for it.
type BlockedRow struct {
	Username  string   `json:"username"`
	DuoUserID string   `json:"duo_user_id"`
	Status    string   `json:"status"` // disabled, locked out, pending deletion
	Requests  []string `json:"requests"`
	Detail    string   `json:"detail"`
}

// ConflictRow is a username whose requests disagree, so none was applied.
type ConflictRow struct {
	Username string   `json:"username"`
	Field    string   `json:"field"`  // "email", "realname", ...
	Values   []string `json:"values"` // the disagreeing values
	Requests []string `json:"requests"`
	Detail   string   `json:"detail"`
}

// Kinds of drift.
const (
	DriftAttribute         = "attribute"          // a Duo attribute differs from the request
	DriftUnexplainedMember = "unexplained_member" // a member of a managed group no request explains
)

// DriftRow is a difference between Duo and the requests that duosync reports
// but does not change.
type DriftRow struct {
	Kind      string `json:"kind"` // DriftAttribute or DriftUnexplainedMember
	Username  string `json:"username"`
	DuoUserID string `json:"duo_user_id"`
	Group     string `json:"group,omitempty"`
	Field     string `json:"field,omitempty"`
	DuoValue  string `json:"duo_value,omitempty"`
	Wanted    string `json:"wanted,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// FailureRow is one action that failed, with what Duo answered.
type FailureRow struct {
	Action     string   `json:"action"` // create_user, enroll, add_membership, create_group, update_user
	Username   string   `json:"username"`
	Group      string   `json:"group,omitempty"`
	Requests   []string `json:"requests"`
	Attempts   int      `json:"attempts"`
	HTTPStatus int      `json:"http_status,omitempty"`
	DuoCode    int      `json:"duo_code,omitempty"`
	DuoMessage string   `json:"duo_message,omitempty"`
	Error      string   `json:"error"`
}

// EmailStatus records the delivery of the report by email.
type EmailStatus struct {
	To     []string  `json:"to"`
	SentAt time.Time `json:"sent_at,omitzero"`
	Error  string    `json:"error,omitempty"`
}

// New returns an empty report of the current schema version.
func New(runID, mode string) *Report {
	return &Report{SchemaVersion: SchemaVersion, RunID: runID, Mode: mode}
}

// IsPlan reports whether the run only planned.
func (r *Report) IsPlan() bool { return r.Mode == ModePlan }

// Changes is the number of writes the run made (or, in PLAN mode, would make).
func (r *Report) Changes() int {
	s := r.Summary
	return s.Created + s.Updated + s.EnrollmentsSent + s.MembershipsAdded + s.GroupsCreated
}

// Failed reports whether something went wrong: an action failed, the run
// errored, a guard tripped or the run was interrupted.
func (r *Report) Failed() bool {
	return r.Summary.Failed > 0 || len(r.Failures) > 0 || r.GuardTripped != "" ||
		r.Interrupted || r.Error != "" || (r.ExitCode != 0 && r.ExitCode != 2)
}

// NeedsHuman reports whether anything in the report asks for a person:
// failures, blocked users, conflicts, invalid rows or warnings.
func (r *Report) NeedsHuman() bool {
	return r.Failed() || len(r.Blocked) > 0 || len(r.Conflicts) > 0 || len(r.Invalid) > 0 ||
		len(r.Warnings) > 0 || r.Summary.Blocked > 0 || r.Summary.Conflicts > 0 || r.Summary.Invalid > 0
}

// Duration is how long the run took (0 when a time is missing).
func (r *Report) Duration() time.Duration {
	if r.StartedAt.IsZero() || r.FinishedAt.IsZero() || r.FinishedAt.Before(r.StartedAt) {
		return 0
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

// outcomeRank orders request rows for people: what needs a human first.
var outcomeRank = map[string]int{
	OutcomeFailed:     0,
	OutcomePartial:    1,
	OutcomeBlocked:    2,
	OutcomeConflict:   3,
	OutcomeInvalid:    4,
	OutcomeNotStarted: 6,
	OutcomeApplied:    7,
	OutcomePlanned:    7,
	OutcomeSkipped:    8,
	OutcomeInSync:     9,
}

// needsHumanOutcome reports whether a request row's outcome asks for a person.
func needsHumanOutcome(o string) bool {
	switch o {
	case OutcomeFailed, OutcomePartial, OutcomeBlocked, OutcomeConflict, OutcomeInvalid:
		return true
	}
	return false
}

// sortedRequests returns the request rows ordered for people (a copy):
// what needs a human first, then by RITM number.
func sortedRequests(rows []RequestRow) []RequestRow {
	out := append([]RequestRow(nil), rows...)
	rank := func(o string) int {
		if n, ok := outcomeRank[o]; ok {
			return n
		}
		return 6 // unknown outcomes sit with the unfinished ones
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i].Outcome), rank(out[j].Outcome)
		if ri != rj {
			return ri < rj
		}
		return out[i].Number < out[j].Number
	})
	return out
}

// sortedReasons returns the keys of a count map in a stable order.
func sortedReasons(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
