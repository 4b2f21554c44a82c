package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/duosync/duosync/duo"
)

// MaxBulkCreate is the largest batch sent to bulk_create.
const MaxBulkCreate = 100

// ApplyOptions tune Apply.
type ApplyOptions struct {
	RunID   string
	Workers int // the pool's width; default 4
	// DrainTimeout bounds how long in-flight calls may run on after ctx is
	// cancelled (SIGINT); default 30s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// OnProgress is called after each action with the number of actions
	// finished (or skipped) and the total. Calls are serialised.
	OnProgress func(done, total int)
}

// ActionResult is what became of one action.
type ActionResult struct {
	Action     Action        `json:"action"`
	Outcome    string        `json:"outcome"` // ok, failed, unknown, skipped, not_started
	UserID     string        `json:"user_id,omitempty"`
	GroupID    string        `json:"group_id,omitempty"`
	Detail     string        `json:"detail,omitempty"`
	HTTPStatus int           `json:"http_status,omitempty"`
	DuoCode    int           `json:"duo_code,omitempty"`
	DuoMessage string        `json:"duo_message,omitempty"`
	Attempts   int           `json:"attempts,omitempty"` // calls made for it, retries included (0: not known)
	Duration   time.Duration `json:"duration,omitempty"`
}

// RequestResult is what became of one request (RITM).
type RequestResult struct {
	Request  string   `json:"request"`
	Username string   `json:"username,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Actions  []string `json:"actions,omitempty"` // kinds of the actions done
	Groups   []string `json:"groups,omitempty"`  // groups it was added to
	Outcome  string   `json:"outcome"`           // ok, failed, blocked, conflict, skipped, not_started
	Detail   string   `json:"detail,omitempty"`
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
}

// ResultCounts are the summary figures of an apply.
type ResultCounts struct {
	Created          int `json:"created"`
	Updated          int `json:"updated"`
	Enrolled         int `json:"enrolled"`
	EnrollUnknown    int `json:"enroll_unknown"` // maybe sent; counted as sent
	PendingNotResent int `json:"pending_not_resent"`
	MembershipsAdded int `json:"memberships_added"`
	GroupsCreated    int `json:"groups_created"`
	Blocked          int `json:"blocked"`
	Conflicts        int `json:"conflicts"`
	Failed           int `json:"failed"`          // actions failed or of unknown outcome
	FailedRequests   int `json:"failed_requests"` // requests not served as asked
	Skipped          int `json:"skipped"`         // actions not attempted after a failure
	NotStarted       int `json:"not_started"`     // actions not started (interrupted)
}

// Result is what an apply did.
type Result struct {
	RunID       string          `json:"run_id"`
	Actions     []ActionResult  `json:"actions"`
	Requests    []RequestResult `json:"requests"`
	Counts      ResultCounts    `json:"counts"`
	Interrupted bool            `json:"interrupted"`
}

// Partial reports whether some action or request failed (exit 3).
func (r Result) Partial() bool { return r.Counts.Failed > 0 || r.Counts.FailedRequests > 0 }

// Apply writes the plan to Duo. Groups to create go first; then each user's
// actions run as a chain (create, then enrollment and memberships) and the
// chains run in a pool of opts.Workers. Users to create without aliases are
// created with bulk_create in batches of up to 100 before their chains.
//
// Every call is journaled before it is made and after it returns. When ctx
// is cancelled no new action starts; calls in flight get opts.DrainTimeout
// to finish, and the rest are "not_started". Apply never returns early on
// a failed action: the result says what became of each one.
func Apply(ctx context.Context, plan Plan, w DuoWriter, j Journal, opts ApplyOptions) Result {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Calls outlive the run's cancellation by the drain bound, so that a
	// request already sent gets its answer and is journaled.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			cancelCalls()
		}
	}()

	ap := &applier{
		run: ctx, call: callCtx, w: w, j: j, opts: opts, plan: plan,
		results:  make([]ActionResult, len(plan.Actions)),
		groupIDs: map[string]string{},
		userIDs:  map[string]string{},
	}
	for i, a := range plan.Actions {
		ap.results[i] = ActionResult{Action: a, Outcome: OutcomeNotStarted, UserID: a.UserID, GroupID: a.GroupID}
	}
	ap.apply()
	return ap.result()
}

type applier struct {
	run, call context.Context
	w         DuoWriter
	j         Journal
	opts      ApplyOptions
	plan      Plan

	mu       gosync.Mutex
	results  []ActionResult
	groupIDs map[string]string // lower-cased name → id, of groups created by this run
	userIDs  map[string]string // normalised username → id, of users created by this run
	done     int
}

// chain is one user's actions, by index into the plan.
type chain struct {
	key     string
	create  int // -1 when the user exists
	actions []int
	bulk    bool // created by bulk_create before the chain runs
}

func (ap *applier) apply() {
	var groups []int
	var chains []*chain
	byKey := map[string]*chain{}
	for i, a := range ap.plan.Actions {
		if a.Kind == CreateGroup {
			groups = append(groups, i)
			continue
		}
		key := a.UserKey()
		c, ok := byKey[key]
		if !ok {
			c = &chain{key: key, create: -1}
			byKey[key] = c
			chains = append(chains, c)
		}
		if a.Kind == CreateUser && c.create < 0 {
			c.create = i
			c.bulk = a.NewUser != nil && len(a.NewUser.Aliases) == 0 // bulk_create takes no aliases
		} else {
			c.actions = append(c.actions, i)
		}
	}

	ap.pool(len(groups), func(n int) { ap.do(groups[n], ap.createGroup) })

	var batches [][]int
	var batch []int
	for _, c := range chains {
		if c.create >= 0 && c.bulk {
			batch = append(batch, c.create)
			if len(batch) == MaxBulkCreate {
				batches, batch = append(batches, batch), nil
			}
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	ap.pool(len(batches), func(n int) { ap.bulkCreate(batches[n]) })

	ap.pool(len(chains), func(n int) { ap.chain(chains[n]) })
}

// pool runs n jobs, at most Workers at once, and starts none once the run
// is cancelled.
func (ap *applier) pool(n int, job func(int)) {
	var g errgroup.Group
	g.SetLimit(ap.opts.Workers)
	for i := 0; i < n; i++ {
		if ap.run.Err() != nil {
			break
		}
		g.Go(func() error { job(i); return nil })
	}
	_ = g.Wait() // jobs record their own failures
}

// chain runs one user's actions in order. A create that did not succeed
// skips the rest, with the reason.
func (ap *applier) chain(c *chain) {
	if c.create >= 0 && !c.bulk {
		ap.do(c.create, ap.createUser)
	}
	if c.create >= 0 {
		if r := ap.get(c.create); r.Outcome != OutcomeOK {
			// After an interrupt the rest is not started rather than skipped:
			// the next run will do it.
			if r.Outcome != OutcomeNotStarted && ap.run.Err() == nil {
				ap.skip(c.actions, fmt.Sprintf("not attempted: creating %s %s: %s", ap.plan.Actions[c.create].Username, outcomeWord(r.Outcome), r.Detail))
			}
			return
		}
	}
	for n, i := range c.actions {
		a := ap.plan.Actions[i]
		if a.Kind == AddMembership && a.GroupID == "" && ap.resolve(a).GroupID == "" && ap.run.Err() == nil {
			ap.skip(c.actions[n:n+1], fmt.Sprintf("not attempted: group %q was not created (see its create_group action)", a.Group))
			continue
		}
		switch a.Kind {
		case Enroll:
			ap.do(i, ap.enroll)
		case AddMembership:
			ap.do(i, ap.addMembership)
		case UpdateUser:
			ap.do(i, ap.updateUser)
		default:
			ap.finish(i, OutcomeFailed, fmt.Errorf("unexpected %s action in a user's chain", a.Kind), 0)
		}
	}
}

func outcomeWord(outcome string) string {
	if outcome == OutcomeUnknown {
		return "has an unknown outcome"
	}
	return outcome
}

func (ap *applier) get(i int) ActionResult {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.results[i]
}

func (ap *applier) skip(idx []int, detail string) {
	for _, i := range idx {
		ap.mu.Lock()
		ap.results[i].Outcome = OutcomeSkipped
		ap.results[i].Detail = detail
		ap.mu.Unlock()
		ap.log(i, 0, nil)
		ap.progress()
	}
}

// call is one Duo write: it returns the id of the object written.
type call func(ctx context.Context, a Action) (id string, err error)

// do journals, makes and records one call, unless the run was cancelled.
func (ap *applier) do(i int, fn call) {
	if ap.run.Err() != nil {
		return // stays not_started
	}
	a := ap.plan.Actions[i]
	jid, err := ap.started(a)
	if err != nil {
		// Without a recorded intent a crash could repeat the call: don't make it.
		ap.finish(i, OutcomeFailed, fmt.Errorf("not attempted: journal: %w", err), 0)
		return
	}
	start := time.Now()
	id, err := fn(ap.call, ap.resolve(a))
	outcome := OutcomeOK
	if err != nil {
		outcome = OutcomeFailed
		if errors.Is(err, duo.ErrOutcomeUnknown) {
			outcome = OutcomeUnknown
		}
	}
	ap.mu.Lock()
	switch a.Kind {
	case CreateUser:
		if err == nil {
			ap.results[i].UserID = id
			ap.userIDs[a.UserKey()] = id
		}
	case CreateGroup:
		if err == nil {
			ap.results[i].GroupID = id
			ap.groupIDs[strings.ToLower(strings.TrimSpace(a.Group))] = id
		}
	}
	ap.mu.Unlock()
	ap.finish(i, outcome, err, time.Since(start))
	ap.finished(jid, outcome, err)
}

// resolve fills in the ids of users and groups created earlier in the run.
func (ap *applier) resolve(a Action) Action {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	if a.UserID == "" {
		a.UserID = ap.userIDs[a.UserKey()]
	}
	if a.GroupID == "" && a.Group != "" {
		a.GroupID = ap.groupIDs[strings.ToLower(strings.TrimSpace(a.Group))]
	}
	return a
}

func (ap *applier) started(a Action) (int64, error) {
	if ap.j == nil {
		return 0, nil
	}
	// The journal knows users by their identity key, the name Enrollments
	// is asked about.
	return ap.j.ActionStarted(ap.call, ap.opts.RunID, JournalAction{Kind: string(a.Kind), Username: a.UserKey(), Group: a.Group, Requests: a.Requests})
}

func (ap *applier) finished(jid int64, outcome string, err error) {
	if ap.j == nil {
		return
	}
	detail := ""
	if err != nil {
		detail = err.Error()
	}
	if jerr := ap.j.ActionFinished(ap.call, jid, outcome, detail); jerr != nil {
		ap.opts.Logger.Error("journal: record an action's result", "run_id", ap.opts.RunID, "journal_id", jid, "error", jerr)
	}
}

// finish records an action's outcome, logs it and reports progress.
func (ap *applier) finish(i int, outcome string, err error, d time.Duration) {
	ap.mu.Lock()
	r := &ap.results[i]
	r.Outcome, r.Duration = outcome, d
	if err != nil {
		r.Detail = err.Error()
		var de *duo.Error
		if errors.As(err, &de) {
			r.HTTPStatus, r.DuoCode, r.DuoMessage = de.HTTPStatus, de.Code, de.Message
		}
		r.Attempts = duo.Attempts(err)
		if outcome == OutcomeUnknown && r.Action.Kind == Enroll {
			r.Detail += " (the email may have been sent; it counts as sent for the resend policy)"
		}
	}
	ap.mu.Unlock()
	ap.log(i, d, err)
	ap.progress()
}

func (ap *applier) progress() {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	ap.done++
	if ap.opts.OnProgress != nil {
		ap.opts.OnProgress(ap.done, len(ap.results))
	}
}

func (ap *applier) log(i int, d time.Duration, err error) {
	r := ap.get(i)
	level := slog.LevelInfo
	switch r.Outcome {
	case OutcomeFailed, OutcomeUnknown:
		level = slog.LevelError
	case OutcomeSkipped:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("run_id", ap.opts.RunID),
		slog.String("action", string(r.Action.Kind)),
		slog.String("username", r.Action.Username),
		slog.String("group", r.Action.Group),
		slog.String("result", r.Outcome),
		slog.Int("attempt", 1), // the Duo client retries inside one action and logs its own attempts
		slog.Duration("duration", d),
	}
	if r.UserID != "" {
		attrs = append(attrs, slog.String("user_id", r.UserID))
	}
	if r.Detail != "" {
		attrs = append(attrs, slog.String("detail", r.Detail))
	}
	ap.opts.Logger.LogAttrs(ap.call, level, "action", attrs...)
}

func (ap *applier) createGroup(ctx context.Context, a Action) (string, error) {
	g, err := ap.w.CreateGroup(ctx, a.Group)
	if err != nil {
		return "", fmt.Errorf("create group %q: %w", a.Group, err)
	}
	return g.ID, nil
}

func newUser(f *UserFields) duo.NewUser {
	return duo.NewUser{Username: f.Username, Aliases: f.Aliases, Email: f.Email, Realname: f.Realname,
		Firstname: f.Firstname, Lastname: f.Lastname, Notes: f.Notes}
}

func (ap *applier) createUser(ctx context.Context, a Action) (string, error) {
	if a.NewUser == nil {
		return "", fmt.Errorf("create user %q: the plan gives no fields for the new user", a.Username)
	}
	u, err := ap.w.CreateUser(ctx, newUser(a.NewUser))
	if err != nil {
		return "", fmt.Errorf("create user %q: %w", a.Username, err)
	}
	if u.ID == "" {
		return "", fmt.Errorf("create user %q: Duo returned no user_id", a.Username)
	}
	return u.ID, nil
}

func (ap *applier) enroll(ctx context.Context, a Action) (string, error) {
	if err := ap.w.EnrollUser(ctx, a.Username, a.Email, a.ValidSecs); err != nil {
		return "", fmt.Errorf("enroll %q: %w", a.Username, err)
	}
	return "", nil
}

func (ap *applier) addMembership(ctx context.Context, a Action) (string, error) {
	switch {
	case a.UserID == "":
		return "", fmt.Errorf("add %q to group %q: no Duo user id (the user was not created)", a.Username, a.Group)
	case a.GroupID == "":
		return "", fmt.Errorf("add %q to group %q: the group was not created", a.Username, a.Group)
	}
	if err := ap.w.AddUserToGroup(ctx, a.UserID, a.GroupID); err != nil {
		return "", fmt.Errorf("add %q to group %q: %w", a.Username, a.Group, err)
	}
	return "", nil
}

func (ap *applier) updateUser(ctx context.Context, a Action) (string, error) {
	var up duo.UserUpdate
	for _, c := range a.Changes {
		want := c.Want
		switch c.Field {
		case "email":
			up.Email = &want
		case "realname":
			up.Realname = &want
		case "firstname":
			up.Firstname = &want
		case "lastname":
			up.Lastname = &want
		case "aliases":
			up.Aliases = strings.Split(want, ", ")
		default:
			return "", fmt.Errorf("update user %q: unknown field %q", a.Username, c.Field)
		}
	}
	if _, err := ap.w.ModifyUser(ctx, a.UserID, up); err != nil {
		return "", fmt.Errorf("update user %q: %w", a.Username, err)
	}
	return a.UserID, nil
}

// bulkCreate creates a batch of users without aliases in one call. Each user
// is journaled on its own, so that the journal says which users a crash
// left unconfirmed.
func (ap *applier) bulkCreate(idx []int) {
	if ap.run.Err() != nil {
		return
	}
	var send []int
	var users []duo.NewUser
	jids := map[int]int64{}
	for _, i := range idx {
		a := ap.plan.Actions[i]
		jid, err := ap.started(a)
		if err != nil {
			ap.finish(i, OutcomeFailed, fmt.Errorf("not attempted: journal: %w", err), 0)
			continue
		}
		jids[i] = jid
		send = append(send, i)
		users = append(users, newUser(a.NewUser))
	}
	if len(send) == 0 {
		return
	}
	start := time.Now()
	created, err := ap.w.BulkCreateUsers(ap.call, users)
	d := time.Since(start)
	byName := map[string]string{}
	for _, u := range created {
		byName[Normalize(u.Username)] = u.ID
	}
	for _, i := range send {
		a := ap.plan.Actions[i]
		outcome, uerr := OutcomeOK, error(nil)
		id := byName[Normalize(a.Username)]
		switch {
		case err != nil:
			outcome, uerr = OutcomeFailed, fmt.Errorf("create user %q (bulk_create of %d): %w", a.Username, len(users), err)
			if errors.Is(err, duo.ErrOutcomeUnknown) {
				outcome = OutcomeUnknown
			}
		case id == "":
			outcome, uerr = OutcomeFailed, fmt.Errorf("create user %q: bulk_create returned no user of that name", a.Username)
		}
		if outcome == OutcomeOK {
			ap.mu.Lock()
			ap.results[i].UserID = id
			ap.userIDs[a.UserKey()] = id
			ap.mu.Unlock()
		}
		ap.finish(i, outcome, uerr, d)
		ap.finished(jids[i], outcome, uerr)
	}
}

// result summarises the action results per request and in counts.
func (ap *applier) result() Result {
	res := Result{RunID: ap.opts.RunID, Actions: ap.results, Interrupted: ap.run.Err() != nil}
	c := &res.Counts
	byReq := map[string][]int{}
	for i, r := range ap.results {
		switch r.Outcome {
		case OutcomeOK:
			switch r.Action.Kind {
			case CreateUser:
				c.Created++
			case UpdateUser:
				c.Updated++
			case Enroll:
				c.Enrolled++
			case AddMembership:
				c.MembershipsAdded++
			case CreateGroup:
				c.GroupsCreated++
			}
		case OutcomeFailed:
			c.Failed++
		case OutcomeUnknown:
			c.Failed++
			if r.Action.Kind == Enroll {
				c.EnrollUnknown++
			}
		case OutcomeSkipped:
			c.Skipped++
		case OutcomeNotStarted:
			c.NotStarted++
		}
		if r.Action.Kind == CreateGroup {
			continue
		}
		for _, q := range r.Action.Requests {
			byReq[q] = append(byReq[q], i)
		}
	}
	c.PendingNotResent = len(ap.plan.Pending)
	c.Blocked = len(ap.plan.Blocked)
	c.Conflicts = len(ap.plan.Conflicts)
	for _, rp := range ap.plan.Requests {
		rr := RequestResult{Request: rp.Request, Username: rp.Username, UserID: rp.UserID, Outcome: rp.Outcome,
			Detail: rp.Detail, File: rp.File, Line: rp.Line}
		switch rp.Outcome {
		case OutcomeInSync:
			rr.Outcome = OutcomeOK
		case OutcomeChange, OutcomeError:
			ap.requestOutcome(&rr, rp, byReq[rp.Request])
		}
		if rr.Outcome == OutcomeFailed {
			c.FailedRequests++
		}
		res.Requests = append(res.Requests, rr)
	}
	return res
}

// requestOutcome derives a request's outcome from its actions' outcomes:
// any failure fails it, else any action not started leaves it not_started.
func (ap *applier) requestOutcome(rr *RequestResult, rp RequestPlan, idx []int) {
	var done, failed, notStarted []string
	for _, i := range idx {
		r := ap.results[i]
		if r.UserID != "" {
			rr.UserID = r.UserID
		}
		switch r.Outcome {
		case OutcomeOK:
			rr.Actions = append(rr.Actions, string(r.Action.Kind))
			if r.Action.Kind == AddMembership {
				rr.Groups = append(rr.Groups, r.Action.Group)
			}
			done = append(done, doneWord(r.Action))
		case OutcomeNotStarted:
			notStarted = append(notStarted, string(r.Action.Kind))
		default:
			failed = append(failed, fmt.Sprintf("%s %s: %s", r.Action.Kind, r.Outcome, r.Detail))
		}
	}
	var parts []string
	if rp.Outcome == OutcomeError {
		parts = append(parts, rp.Detail)
	}
	parts = append(parts, failed...)
	if len(done) > 0 {
		parts = append(parts, strings.Join(done, ", "))
	}
	if len(notStarted) > 0 {
		parts = append(parts, "not started (interrupted): "+strings.Join(notStarted, ", "))
	}
	rr.Detail = strings.Join(parts, "; ")
	switch {
	case rp.Outcome == OutcomeError || len(failed) > 0:
		rr.Outcome = OutcomeFailed
	case len(notStarted) > 0:
		rr.Outcome = OutcomeNotStarted
	default:
		rr.Outcome = OutcomeOK
	}
}

func doneWord(a Action) string {
	switch a.Kind {
	case CreateUser:
		return "created " + a.Username
	case UpdateUser:
		return "updated " + a.Username
	case Enroll:
		return "enrollment email sent to " + a.Email
	case AddMembership:
		return fmt.Sprintf("added to %q", a.Group)
	}
	return string(a.Kind)
}
