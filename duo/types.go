// Package duo is duosync's client for the Duo Admin API, built on the
// official duo_api_golang library but clear of its traps (see
// ../shared/reference/duo-admin-api.md): paging at limit 300 that follows
// next_offset and fails on any failed page, retries that re-send POST bodies,
// a shared rate limiter and 429 pause, contexts and typed errors.
package duo

import "fmt"

// User is the part of a Duo user object duosync uses.
type User struct {
	ID            string   `json:"user_id"`
	Username      string   `json:"username"`
	Aliases       []string `json:"aliases,omitempty"` // alias1..alias4, non-empty ones, in order
	Email         string   `json:"email"`
	Realname      string   `json:"realname"`
	Firstname     string   `json:"firstname"`
	Lastname      string   `json:"lastname"`
	Notes         string   `json:"notes"`
	Status        string   `json:"status"` // active, bypass, disabled, "locked out", "pending deletion"
	LockoutReason string   `json:"lockout_reason,omitempty"`
	IsEnrolled    bool     `json:"is_enrolled"`
	Groups        []Group  `json:"groups"`
}

// Group is a Duo group.
type Group struct {
	ID     string `json:"group_id"`
	Name   string `json:"name"`
	Desc   string `json:"desc,omitempty"`
	Status string `json:"status,omitempty"`
}

// NewUser holds the fields for POST /admin/v1/users (and bulk_create).
type NewUser struct {
	Username  string
	Aliases   []string // alias1..alias4
	Email     string
	Realname  string
	Firstname string
	Lastname  string
	Notes     string
}

// UserUpdate holds the fields of POST /admin/v1/users/{id}; nil means unchanged.
type UserUpdate struct {
	Email     *string
	Realname  *string
	Firstname *string
	Lastname  *string
	Notes     *string
	Aliases   []string // nil = unchanged
}

// Error is a failure answered by Duo: its error envelope
// {"stat":"FAIL","code":N,"message":"…","message_detail":"…"} and HTTP status.
type Error struct {
	HTTPStatus int
	Code       int
	Message    string
	Detail     string
	Method     string
	Path       string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("duo %s %s: HTTP %d", e.Method, e.Path, e.HTTPStatus)
	if e.Code != 0 {
		s += fmt.Sprintf(" code %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// ErrOutcomeUnknown is wrapped by a write whose request was sent but whose
// answer never came (timeout, dropped connection) and that could not be
// verified with a read. Callers must treat it as "maybe done" (an enrollment
// email maybe sent) and never blindly repeat it.
var ErrOutcomeUnknown = fmt.Errorf("outcome unknown: the request was sent but no answer came")
