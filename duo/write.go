package duo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// bulkCreateMax is the batch size of POST /admin/v1/users/bulk_create.
const bulkCreateMax = 100

// maxAliases is alias1..alias4, the positions NewUser and UserUpdate set.
const maxAliases = 4

// CreateUser creates a user (POST /admin/v1/users) with its aliases and
// notes. If an attempt's outcome is unknown, the username is looked up
// before anything is re-sent: a user that is there is returned as created.
func (c *Client) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	params, err := newUserParams(nu)
	if err != nil {
		return User{}, err
	}
	req := request{method: http.MethodPost, path: "/admin/v1/users", endpoint: "/admin/v1/users", params: params}
	uncertain := false // an earlier attempt may have created it
	var w wireUser
	req.out = &w
	for round := 1; ; round++ {
		_, err := c.do(ctx, req)
		if err == nil && w.UserID == "" {
			return User{}, fmt.Errorf("create user %q: %w", nu.Username, errNoResponse)
		}
		if err == nil {
			return w.user(), nil
		}
		if uncertain && isDuplicate(err) {
			// Most likely our own unanswered attempt landed after the read.
			if u, ok, rerr := c.userByName(ctx, nu.Username); rerr == nil && ok && strings.EqualFold(u.Username, nu.Username) {
				c.stats.verified.Add(1)
				return u, nil
			}
		}
		if !errors.Is(err, ErrOutcomeUnknown) || ctx.Err() != nil || round >= c.maxAttempts {
			return User{}, fmt.Errorf("create user %q: %w", nu.Username, err)
		}
		uncertain = true
		u, ok, rerr := c.userByName(ctx, nu.Username)
		if rerr != nil {
			return User{}, fmt.Errorf("create user %q: %w (verifying by a read failed: %v)", nu.Username, err, rerr)
		}
		c.stats.verified.Add(1)
		if ok && strings.EqualFold(u.Username, nu.Username) {
			c.log.Info("duo create settled by a read: the user exists", "username", nu.Username, "user_id", u.ID)
			return u, nil
		}
		c.log.Info("duo create settled by a read: not created, sending again", "username", nu.Username)
	}
}

// BulkCreateUsers creates users with POST /admin/v1/users/bulk_create, one
// call per 100. bulk_create takes no aliases: a NewUser with aliases is
// refused (use CreateUser). Users come back in the order given. On an
// unknown outcome the batch's usernames are looked up and only the missing
// ones are sent again. On an error, the users created so far are returned.
func (c *Client) BulkCreateUsers(ctx context.Context, nus []NewUser) ([]User, error) {
	for i, nu := range nus {
		if strings.TrimSpace(nu.Username) == "" {
			return nil, fmt.Errorf("bulk create users: entry %d: username is empty", i+1)
		}
		if len(nu.Aliases) > 0 {
			return nil, fmt.Errorf("bulk create users: %q has aliases, which bulk_create does not take; use CreateUser", nu.Username)
		}
	}
	var out []User
	for i := 0; i < len(nus); i += bulkCreateMax {
		batch := nus[i:min(i+bulkCreateMax, len(nus))]
		created, err := c.bulkCreate(ctx, batch)
		out = append(out, created...)
		if err != nil {
			return out, fmt.Errorf("bulk create users %d-%d of %d: %w", i+1, i+len(batch), len(nus), err)
		}
	}
	return out, nil
}

type bulkUser struct {
	Username  string `json:"username"`
	Email     string `json:"email,omitempty"`
	Realname  string `json:"realname,omitempty"`
	Firstname string `json:"firstname,omitempty"`
	Lastname  string `json:"lastname,omitempty"`
	Notes     string `json:"notes,omitempty"`
}

func (c *Client) bulkCreate(ctx context.Context, batch []NewUser) ([]User, error) {
	byName := map[string]User{} // lower-cased username → created
	pending := batch
	for round := 1; len(pending) > 0; round++ {
		list := make([]bulkUser, len(pending))
		for i, nu := range pending {
			list[i] = bulkUser{Username: nu.Username, Email: nu.Email, Realname: nu.Realname,
				Firstname: nu.Firstname, Lastname: nu.Lastname, Notes: nu.Notes}
		}
		body, err := json.Marshal(list)
		if err != nil {
			return nil, err
		}
		var ws []wireUser
		_, err = c.do(ctx, request{method: http.MethodPost, path: "/admin/v1/users/bulk_create",
			endpoint: "/admin/v1/users/bulk_create", params: url.Values{"users": {string(body)}}, out: &ws})
		if err == nil && ws == nil {
			err = errNoResponse
		}
		if err == nil {
			for _, w := range ws {
				byName[strings.ToLower(w.Username)] = w.user()
			}
			return inOrder(batch, byName), nil
		}
		if !errors.Is(err, ErrOutcomeUnknown) || ctx.Err() != nil || round >= c.maxAttempts {
			return inOrder(batch, byName), err
		}
		names := make([]string, len(pending))
		for i, nu := range pending {
			names[i] = nu.Username
		}
		found, rerr := c.UsersByName(ctx, names)
		if rerr != nil {
			return inOrder(batch, byName), fmt.Errorf("%w (verifying by a read failed: %v)", err, rerr)
		}
		c.stats.verified.Add(1)
		for _, u := range found {
			byName[strings.ToLower(u.Username)] = u
		}
		var missing []NewUser
		for _, nu := range pending {
			if _, ok := byName[strings.ToLower(nu.Username)]; !ok {
				missing = append(missing, nu)
			}
		}
		pending = missing
	}
	return inOrder(batch, byName), nil
}

func inOrder(batch []NewUser, byName map[string]User) []User {
	var out []User
	for _, nu := range batch {
		if u, ok := byName[strings.ToLower(nu.Username)]; ok {
			out = append(out, u)
		}
	}
	return out
}

// ModifyUser sets the non-nil fields of up (POST /admin/v1/users/{id}).
// Setting a field again is harmless, so it is retried like a read.
// Aliases, when non-nil, are written to alias1..alias4 in order; positions
// past the given aliases are left as they are.
func (c *Client) ModifyUser(ctx context.Context, id string, up UserUpdate) (User, error) {
	if err := checkID("user id", id); err != nil {
		return User{}, err
	}
	params := url.Values{}
	for key, v := range map[string]*string{"email": up.Email, "realname": up.Realname,
		"firstname": up.Firstname, "lastname": up.Lastname, "notes": up.Notes} {
		if v != nil {
			params.Set(key, *v)
		}
	}
	if len(up.Aliases) > maxAliases {
		return User{}, fmt.Errorf("modify user %s: %d aliases, at most %d", id, len(up.Aliases), maxAliases)
	}
	for i, a := range up.Aliases {
		params.Set("alias"+strconv.Itoa(i+1), a)
	}
	if len(params) == 0 {
		return User{}, fmt.Errorf("modify user %s: nothing to change", id)
	}
	var w wireUser
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/v1/users/" + id,
		endpoint: "/admin/v1/users/{id}", params: params, idempotent: true, out: &w})
	if err == nil && w.UserID == "" {
		err = errNoResponse
	}
	if err != nil {
		return User{}, fmt.Errorf("modify user %s: %w", id, err)
	}
	return w.user(), nil
}

// EnrollUser sends an enrollment email (POST /admin/v1/users/enroll).
// validSecs <= 0 leaves Duo's default (30 days). An enrollment cannot be
// verified by a read, so an attempt whose outcome is unknown is never
// repeated: the error wraps ErrOutcomeUnknown ("maybe sent").
func (c *Client) EnrollUser(ctx context.Context, username, email string, validSecs int) error {
	if strings.TrimSpace(username) == "" || strings.TrimSpace(email) == "" {
		return fmt.Errorf("enroll user %q: username and email are required", username)
	}
	params := url.Values{"username": {username}, "email": {email}}
	if validSecs > 0 {
		params.Set("valid_secs", strconv.Itoa(validSecs))
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/v1/users/enroll",
		endpoint: "/admin/v1/users/enroll", params: params})
	if err != nil {
		return fmt.Errorf("enroll user %q: %w", username, err)
	}
	return nil
}

// AddUserToGroup adds a membership (POST /admin/v1/users/{id}/groups).
// Adding an existing membership is a no-op in Duo, so it is retried like
// a read, unknown outcomes included.
func (c *Client) AddUserToGroup(ctx context.Context, userID, groupID string) error {
	if err := checkID("user id", userID); err != nil {
		return err
	}
	if err := checkID("group id", groupID); err != nil {
		return err
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/v1/users/" + userID + "/groups",
		endpoint: "/admin/v1/users/{id}/groups", params: url.Values{"group_id": {groupID}}, idempotent: true})
	if err != nil {
		return fmt.Errorf("add user %s to group %s: %w", userID, groupID, err)
	}
	return nil
}

// CreateGroup creates a group (POST /admin/v1/groups). If an attempt's
// outcome is unknown, the groups are listed before anything is re-sent.
func (c *Client) CreateGroup(ctx context.Context, name string) (Group, error) {
	if strings.TrimSpace(name) == "" {
		return Group{}, errors.New("create group: name is empty")
	}
	req := request{method: http.MethodPost, path: "/admin/v1/groups", endpoint: "/admin/v1/groups",
		params: url.Values{"name": {name}}}
	uncertain := false
	var g Group
	req.out = &g
	for round := 1; ; round++ {
		_, err := c.do(ctx, req)
		if err == nil && g.ID == "" {
			return Group{}, fmt.Errorf("create group %q: %w", name, errNoResponse)
		}
		if err == nil {
			return g, nil
		}
		if uncertain && isDuplicate(err) {
			if g, ok, rerr := c.groupByName(ctx, name); rerr == nil && ok {
				c.stats.verified.Add(1)
				return g, nil
			}
		}
		if !errors.Is(err, ErrOutcomeUnknown) || ctx.Err() != nil || round >= c.maxAttempts {
			return Group{}, fmt.Errorf("create group %q: %w", name, err)
		}
		uncertain = true
		g, ok, rerr := c.groupByName(ctx, name)
		if rerr != nil {
			return Group{}, fmt.Errorf("create group %q: %w (verifying by a read failed: %v)", name, err, rerr)
		}
		c.stats.verified.Add(1)
		if ok {
			return g, nil
		}
	}
}

func (c *Client) groupByName(ctx context.Context, name string) (Group, bool, error) {
	gs, err := c.Groups(ctx)
	if err != nil {
		return Group{}, false, err
	}
	for _, g := range gs {
		if g.Name == name {
			return g, true, nil
		}
	}
	return Group{}, false, nil
}

// isDuplicate reports Duo's answer to a username, alias or group name
// that is taken: 400 with code 40002.
func isDuplicate(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.HTTPStatus == http.StatusBadRequest && e.Code == 40002
}

func newUserParams(nu NewUser) (url.Values, error) {
	if strings.TrimSpace(nu.Username) == "" {
		return nil, errors.New("create user: username is empty")
	}
	if len(nu.Aliases) > maxAliases {
		return nil, fmt.Errorf("create user %q: %d aliases, at most %d", nu.Username, len(nu.Aliases), maxAliases)
	}
	p := url.Values{"username": {nu.Username}}
	for i, a := range nu.Aliases {
		if a != "" {
			p.Set("alias"+strconv.Itoa(i+1), a)
		}
	}
	for key, v := range map[string]string{"email": nu.Email, "realname": nu.Realname,
		"firstname": nu.Firstname, "lastname": nu.Lastname, "notes": nu.Notes} {
		if v != "" {
			p.Set(key, v)
		}
	}
	return p, nil
}
