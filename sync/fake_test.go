package sync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
)

// fakeDuo is a stateful, in-memory Duo for the engine's tests, in the
// spirit of peribolos' fakeClient. Failures are injected by magic names:
//
//	fail@…       CreateUser/BulkCreateUsers answer HTTP 400 code 40002
//	ratelimit@…  every write for the user answers HTTP 429 code 42901
//	unknown@…    EnrollUser's outcome is unknown (sent, no answer)
//	nogroup@…    AddUserToGroup answers HTTP 500 code 50001
//	Broken…      CreateGroup (a group name) answers HTTP 500 code 50001
type fakeDuo struct {
	mu      gosync.Mutex
	users   []*duo.User
	byName  map[string]*duo.User // normalised username and aliases
	groups  []duo.Group
	nextID  int
	calls   map[string]int
	log     []string // "create_user jdoe@x", in call order
	enrolls []string // "username→email"

	delay          time.Duration // every write sleeps this long
	inflight, peak int
	// gate, when set, makes every write wait until it is closed or the
	// call's context ends; started is signalled as each write begins.
	gate    chan struct{}
	started chan string
	// afterWrite, when set, is called after each write with the number of
	// writes so far (outside the lock).
	afterWrite func(n int)
	nwrites    int
}

var _ DuoReader = (*fakeDuo)(nil)
var _ DuoWriter = (*fakeDuo)(nil)

func newFakeDuo(users []duo.User, groups []duo.Group) *fakeDuo {
	f := &fakeDuo{calls: map[string]int{}, byName: map[string]*duo.User{}}
	for i := range users {
		u := users[i]
		f.addLocked(&u)
	}
	f.groups = slices.Clone(groups)
	return f
}

func (f *fakeDuo) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s%018d", prefix, f.nextID)
}

// enter counts a write in flight and applies the delay and gate.
func (f *fakeDuo) enter(ctx context.Context, kind, what string) error {
	f.mu.Lock()
	f.calls[kind]++
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	gate, started := f.gate, f.started
	f.mu.Unlock()
	if started != nil {
		started <- kind + " " + what
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			f.leave()
			return fmt.Errorf("%s %s: %w", kind, what, ctx.Err())
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	return nil
}

func (f *fakeDuo) leave() {
	f.mu.Lock()
	f.inflight--
	f.nwrites++
	n, hook := f.nwrites, f.afterWrite
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
}

func magic(username, prefix string) bool { return strings.HasPrefix(Normalize(username), prefix+"@") }

func rateLimited(method, path string) error {
	return &duo.Error{HTTPStatus: 429, Code: 42901, Message: "Too Many Requests", Method: method, Path: path}
}

func (f *fakeDuo) addLocked(u *duo.User) {
	f.users = append(f.users, u)
	f.index(u)
}

func (f *fakeDuo) index(u *duo.User) {
	for _, a := range u.Aliases {
		if _, taken := f.byName[Normalize(a)]; !taken {
			f.byName[Normalize(a)] = u
		}
	}
	f.byName[Normalize(u.Username)] = u // a username wins over an alias
}

// findLocked finds a user by username, else by alias.
func (f *fakeDuo) findLocked(name string) *duo.User { return f.byName[Normalize(name)] }

// remove deletes a user, as an admin would in the Duo console.
func (f *fakeDuo) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.findLocked(name)
	f.users = slices.DeleteFunc(f.users, func(x *duo.User) bool { return x == u })
	for k, v := range f.byName {
		if v == u {
			delete(f.byName, k)
		}
	}
}

func (f *fakeDuo) UsersFor(_ context.Context, usernames []string) ([]duo.User, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["users_for"]++
	var out []duo.User
	seen := map[string]bool{}
	for _, n := range usernames {
		if u := f.findLocked(n); u != nil && !seen[u.ID] {
			seen[u.ID] = true
			c := *u
			c.Groups = slices.Clone(u.Groups)
			out = append(out, c)
		}
	}
	return out, len(f.users), nil
}

func (f *fakeDuo) Groups(context.Context) ([]duo.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["groups"]++
	return slices.Clone(f.groups), nil
}

func (f *fakeDuo) createLocked(nu duo.NewUser) (duo.User, error) {
	if magic(nu.Username, "fail") {
		return duo.User{}, &duo.Error{HTTPStatus: 400, Code: 40002, Message: "Invalid request parameters", Detail: "username", Method: "POST", Path: "/admin/v1/users"}
	}
	if magic(nu.Username, "ratelimit") {
		return duo.User{}, rateLimited("POST", "/admin/v1/users")
	}
	if f.findLocked(nu.Username) != nil {
		return duo.User{}, &duo.Error{HTTPStatus: 400, Code: 40002, Message: "Invalid request parameters", Detail: "username already exists", Method: "POST", Path: "/admin/v1/users"}
	}
	u := &duo.User{ID: f.id("DU"), Username: nu.Username, Aliases: slices.Clone(nu.Aliases), Email: nu.Email, Realname: nu.Realname,
		Firstname: nu.Firstname, Lastname: nu.Lastname, Notes: nu.Notes, Status: "active"}
	f.addLocked(u)
	f.log = append(f.log, "create_user "+nu.Username)
	return *u, nil
}

func (f *fakeDuo) CreateUser(ctx context.Context, nu duo.NewUser) (duo.User, error) {
	if err := f.enter(ctx, "create_user", nu.Username); err != nil {
		return duo.User{}, err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.createLocked(nu)
}

func (f *fakeDuo) BulkCreateUsers(ctx context.Context, us []duo.NewUser) ([]duo.User, error) {
	if len(us) > MaxBulkCreate {
		return nil, fmt.Errorf("bulk_create of %d users: over %d", len(us), MaxBulkCreate)
	}
	if err := f.enter(ctx, "bulk_create", fmt.Sprint(len(us))); err != nil {
		return nil, err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, nu := range us {
		if len(nu.Aliases) > 0 {
			return nil, &duo.Error{HTTPStatus: 400, Code: 40002, Message: "Invalid request parameters", Detail: "aliases", Method: "POST", Path: "/admin/v1/users/bulk_create"}
		}
		if magic(nu.Username, "fail") || magic(nu.Username, "ratelimit") {
			_, err := f.createLocked(nu)
			return nil, err
		}
	}
	var out []duo.User
	for _, nu := range us {
		u, err := f.createLocked(nu)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func (f *fakeDuo) ModifyUser(ctx context.Context, id string, up duo.UserUpdate) (duo.User, error) {
	if err := f.enter(ctx, "update_user", id); err != nil {
		return duo.User{}, err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.ID != id {
			continue
		}
		for _, p := range []struct {
			src *string
			dst *string
		}{{up.Email, &u.Email}, {up.Realname, &u.Realname}, {up.Firstname, &u.Firstname}, {up.Lastname, &u.Lastname}, {up.Notes, &u.Notes}} {
			if p.src != nil {
				*p.dst = *p.src
			}
		}
		if up.Aliases != nil {
			u.Aliases = slices.Clone(up.Aliases)
			f.index(u)
		}
		f.log = append(f.log, "update_user "+u.Username)
		return *u, nil
	}
	return duo.User{}, &duo.Error{HTTPStatus: 404, Code: 40401, Message: "Resource not found", Method: "POST", Path: "/admin/v1/users/" + id}
}

func (f *fakeDuo) EnrollUser(ctx context.Context, username, email string, validSecs int) error {
	if err := f.enter(ctx, "enroll", username); err != nil {
		return err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case magic(username, "ratelimit"):
		return rateLimited("POST", "/admin/v1/users/enroll")
	case f.findLocked(username) == nil:
		return &duo.Error{HTTPStatus: 400, Code: 40002, Message: "Invalid request parameters", Detail: "username", Method: "POST", Path: "/admin/v1/users/enroll"}
	}
	f.log = append(f.log, "enroll "+username)
	f.enrolls = append(f.enrolls, username+"→"+email)
	if magic(username, "unknown") {
		return fmt.Errorf("POST /admin/v1/users/enroll: %w", duo.ErrOutcomeUnknown)
	}
	return nil
}

func (f *fakeDuo) AddUserToGroup(ctx context.Context, userID, groupID string) error {
	if err := f.enter(ctx, "add_membership", userID+" "+groupID); err != nil {
		return err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	var user *duo.User
	for _, u := range f.users {
		if u.ID == userID {
			user = u
		}
	}
	gi := slices.IndexFunc(f.groups, func(g duo.Group) bool { return g.ID == groupID })
	switch {
	case user == nil || gi < 0:
		return &duo.Error{HTTPStatus: 404, Code: 40401, Message: "Resource not found", Method: "POST", Path: "/admin/v1/users/" + userID + "/groups"}
	case magic(user.Username, "nogroup"):
		return &duo.Error{HTTPStatus: 500, Code: 50001, Message: "Unknown internal server error", Method: "POST", Path: "/admin/v1/users/" + userID + "/groups"}
	case magic(user.Username, "ratelimit"):
		return rateLimited("POST", "/admin/v1/users/"+userID+"/groups")
	}
	if !slices.ContainsFunc(user.Groups, func(g duo.Group) bool { return g.ID == groupID }) {
		user.Groups = append(user.Groups, f.groups[gi])
	}
	f.log = append(f.log, "add_membership "+user.Username+" "+f.groups[gi].Name)
	return nil
}

func (f *fakeDuo) CreateGroup(ctx context.Context, name string) (duo.Group, error) {
	if err := f.enter(ctx, "create_group", name); err != nil {
		return duo.Group{}, err
	}
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(name, "Broken") {
		return duo.Group{}, &duo.Error{HTTPStatus: 500, Code: 50001, Message: "Unknown internal server error", Method: "POST", Path: "/admin/v1/groups"}
	}
	g := duo.Group{ID: f.id("DG"), Name: name, Status: "Active"}
	f.groups = append(f.groups, g)
	f.log = append(f.log, "create_group "+name)
	return g, nil
}

func (f *fakeDuo) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, v := range f.calls {
		if k != "users_for" && k != "groups" {
			n += v
		}
	}
	return n
}

func (f *fakeDuo) user(name string) *duo.User {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.findLocked(name); u != nil {
		c := *u
		return &c
	}
	return nil
}

// have reads the fake like the CLI would, for a desired state.
func (f *fakeDuo) have(d Desired) Have {
	users, total, _ := f.UsersFor(context.Background(), Usernames(d))
	groups, _ := f.Groups(context.Background())
	return Have{Users: users, Groups: groups, Total: total}
}

// fakeJournal is an in-memory Journal.
type fakeJournal struct {
	mu      gosync.Mutex
	actions []journalRow
	failOn  string // a kind whose ActionStarted fails
}

type journalRow struct {
	run    string
	action JournalAction
	result string
	detail string
	at     time.Time
}

var _ Journal = (*fakeJournal)(nil)

func (j *fakeJournal) ActionStarted(_ context.Context, runID string, a JournalAction) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if a.Kind == j.failOn {
		return 0, fmt.Errorf("database is locked")
	}
	j.actions = append(j.actions, journalRow{run: runID, action: a, at: time.Now()})
	return int64(len(j.actions)), nil
}

func (j *fakeJournal) ActionFinished(_ context.Context, id int64, result, detail string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if id < 1 || int(id) > len(j.actions) {
		return fmt.Errorf("no action %d", id)
	}
	j.actions[id-1].result, j.actions[id-1].detail = result, detail
	return nil
}

// Enrollments counts sends, including started-but-unfinished ones, the way
// the real journal must.
func (j *fakeJournal) Enrollments(_ context.Context, usernames []string) (map[string]EnrollmentHistory, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	want := map[string]bool{}
	for _, u := range usernames {
		want[Normalize(u)] = true
	}
	out := map[string]EnrollmentHistory{}
	for _, r := range j.actions {
		k := Normalize(r.action.Username)
		if r.action.Kind != string(Enroll) || !want[k] || r.result == OutcomeFailed {
			continue
		}
		h := out[k]
		h.Count++
		if r.at.After(h.Last) {
			h.Last = r.at
		}
		out[k] = h
	}
	return out, nil
}

// req builds a request from name=value pairs, approved unless said otherwise.
func req(file string, line int, kv ...string) source.Request {
	f := map[string]string{"approval": "approved", "state": "1", "cat_item": "Duo MFA Enrollment"}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	return source.Request{Fields: f, Origin: source.Origin{File: file, Line: line}}
}

// person is a request for a requester with the default columns.
func person(ritm, userName, email, group string) source.Request {
	first, last, _ := strings.Cut(userName, ".")
	return req("export.csv", 0,
		"number", ritm, "sys_id", strings.ToLower(ritm)+"sys",
		"requested_for.user_name", userName, "requested_for.email", email,
		"requested_for.first_name", first, "requested_for.last_name", last,
		"requested_for.name", strings.TrimSpace(first+" "+last), "variables.duo_group", group,
		"sys_updated_on", "2026-11-02 10:00:00")
}
