// Package sync is duosync's engine: it turns approved requests into a desired
// state, diffs it against what Duo has, guards against suspicious runs, and
// applies the resulting plan through a bounded worker pool.
//
// The engine does no HTTP and no SQL. It defines here the small interfaces it
// needs of Duo and of the journal; package duo and package journal satisfy
// them, and the tests use stateful fakes.
package sync

import (
	"context"
	"time"

	"github.com/duosync/duosync/duo"
)

// DuoReader is what the engine reads from Duo.
type DuoReader interface {
	// UsersFor returns the Duo users that can match the given normalised
	// usernames (by username or alias) and the total number of users in the
	// account. The implementation picks the cheaper of paging all users and
	// username_list lookups. A failed or incomplete read is an error: partial
	// data must never reach the diff.
	UsersFor(ctx context.Context, usernames []string) (users []duo.User, total int, err error)
	// Groups returns every group in the account.
	Groups(ctx context.Context) ([]duo.Group, error)
}

// DuoWriter is what the engine writes to Duo. Every method is one Admin API
// call (BulkCreateUsers one call per batch of at most 100).
type DuoWriter interface {
	CreateUser(ctx context.Context, u duo.NewUser) (duo.User, error)
	BulkCreateUsers(ctx context.Context, us []duo.NewUser) ([]duo.User, error)
	ModifyUser(ctx context.Context, userID string, u duo.UserUpdate) (duo.User, error)
	EnrollUser(ctx context.Context, username, email string, validSecs int) error
	AddUserToGroup(ctx context.Context, userID, groupID string) error
	CreateGroup(ctx context.Context, name string) (duo.Group, error)
}

// Journal records every write before and after it is made, and remembers
// enrollment emails across runs. A nil Journal is allowed (tests, demo plan).
type Journal interface {
	// ActionStarted records the intent of an action before its call is made.
	ActionStarted(ctx context.Context, runID string, a JournalAction) (id int64, err error)
	// ActionFinished records its outcome ("ok", "failed", "unknown") after.
	ActionFinished(ctx context.Context, id int64, result, detail string) error
	// Enrollments returns, per normalised username, the enrollment emails the
	// journal knows of: sent, or started and never finished (maybe sent).
	Enrollments(ctx context.Context, usernames []string) (map[string]EnrollmentHistory, error)
}

// JournalAction is the journal's view of one action.
type JournalAction struct {
	Kind string // create_user, enroll, add_membership, create_group, update_user
	// Username is the normalised username the requests map to
	// (Action.UserKey), the name Enrollments is asked about; "" for
	// create_group.
	Username string
	Group    string
	Requests []string // RITM numbers served
}

// EnrollmentHistory is what the journal knows of a user's enrollment emails.
type EnrollmentHistory struct {
	Count int       // sends, counting unconfirmed ones
	Last  time.Time // the latest
}
