package duotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiRequest is an authenticated request as a handler sees it.
type apiRequest struct {
	method string
	params url.Values
	vars   []string // path segments matched by {id} and {gid}
	now    time.Time
}

// handler answers one endpoint; it runs with the store locked.
type handler func(s *Server, r *apiRequest) reply

// routed is the endpoint a request maps to; handle is nil for an unknown one.
type routed struct {
	pattern string
	handle  handler
	vars    []string
}

// routes are the endpoints of reference/duo-admin-api.md §1 the emulator
// serves, most specific first ("bulk_create" before "{id}"). The patterns
// are the keys of Stats.Endpoints.
var routes = []struct {
	method, pattern string
	handle          handler
}{
	{"GET", "/admin/v1/users", listUsers},
	{"POST", "/admin/v1/users", createUser},
	{"POST", "/admin/v1/users/bulk_create", bulkCreate},
	{"POST", "/admin/v1/users/enroll", enroll},
	{"GET", "/admin/v1/users/{id}", getUser},
	{"POST", "/admin/v1/users/{id}", modifyUser},
	{"DELETE", "/admin/v1/users/{id}", deleteUser},
	{"GET", "/admin/v1/users/{id}/groups", listUserGroups},
	{"POST", "/admin/v1/users/{id}/groups", addUserGroup},
	{"DELETE", "/admin/v1/users/{id}/groups/{gid}", removeUserGroup},
	{"GET", "/admin/v1/groups", listGroups},
	{"POST", "/admin/v1/groups", createGroup},
	{"GET", "/admin/v2/groups/{id}", getGroup},
	{"GET", "/admin/v2/groups/{id}/users", listGroupUsers},
}

// route maps a method and path to its endpoint; {id} and {gid} segments
// are returned in vars.
func route(method, path string) routed {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range routes {
		if r.method != method {
			continue
		}
		if vars, ok := match(r.pattern, seg); ok {
			return routed{pattern: r.pattern, handle: r.handle, vars: vars}
		}
	}
	return routed{pattern: "(unknown)"}
}

func match(pattern string, seg []string) (vars []string, ok bool) {
	want := strings.Split(strings.Trim(pattern, "/"), "/")
	if len(want) != len(seg) {
		return nil, false
	}
	for i, w := range want {
		switch {
		case strings.HasPrefix(w, "{"):
			if seg[i] == "" {
				return nil, false
			}
			vars = append(vars, seg[i])
		case w != seg[i]:
			return nil, false
		}
	}
	return vars, true
}

// paging reads limit and offset; a limit above max is lowered to max, as
// Duo treats limit as a request, and the page cap lowers it further.
func (s *Server) paging(p url.Values, def, maxLimit int) (limit, offset, rows int, err *apiError) {
	limit, offset = def, 0
	if p.Has("limit") {
		n, e := strconv.Atoi(p.Get("limit"))
		if e != nil || n < 1 {
			return 0, 0, 0, invalid("limit")
		}
		limit = min(n, maxLimit)
	}
	if p.Has("offset") {
		n, e := strconv.Atoi(p.Get("offset"))
		if e != nil || n < 0 {
			return 0, 0, 0, invalid("offset")
		}
		offset = n
	}
	rows = limit
	if s.pageCap > 0 {
		rows = min(rows, s.pageCap)
	}
	return limit, offset, rows, nil
}

// jsonList parses a username_list / user_id_list parameter: a JSON array of
// at most 100 strings.
func jsonList(p url.Values, name string) ([]string, *apiError) {
	var list []string
	if err := json.Unmarshal([]byte(p.Get(name)), &list); err != nil || len(list) > 100 {
		return nil, invalid(name)
	}
	return list, nil
}

func listUsers(s *Server, r *apiRequest) reply {
	p := r.params
	for _, name := range []string{"username_list", "user_id_list"} {
		if !p.Has(name) {
			continue
		}
		if p.Has("username") || p.Has("email") || (p.Has("username_list") && p.Has("user_id_list")) {
			return invalid(name + " cannot be combined with username, email or another list").reply()
		}
		list, err := jsonList(p, name)
		if err != nil {
			return err.reply()
		}
		seen := map[*user]bool{}
		out := []userJSON{}
		for _, key := range list {
			var u *user
			if name == "user_id_list" {
				u = s.st.byID[key]
			} else {
				u = s.st.lookup(key) // also matches aliases: an emulator choice, see doc.go
			}
			if u != nil && !seen[u] {
				seen[u] = true
				out = append(out, renderUser(u))
			}
		}
		return okList(out, metadata{TotalObjects: len(out)})
	}

	limit, offset, rows, aerr := s.paging(p, 100, 300)
	if aerr != nil {
		return aerr.reply()
	}
	all := s.st.users
	if p.Has("username") || p.Has("email") {
		all = nil
		if p.Has("username") {
			if u := s.st.lookup(p.Get("username")); u != nil {
				all = []*user{u}
			}
		} else {
			all = s.st.users
		}
		if p.Has("email") {
			var matched []*user
			for _, u := range all {
				if strings.EqualFold(u.email, strings.TrimSpace(p.Get("email"))) {
					matched = append(matched, u)
				}
			}
			all = matched
		}
	}
	lo, hi := window(len(all), offset, rows)
	out := make([]userJSON, 0, hi-lo)
	for _, u := range all[lo:hi] {
		out = append(out, renderUser(u))
	}
	return okList(out, pageMeta(len(all), offset, limit, hi-lo))
}

func getUser(s *Server, r *apiRequest) reply {
	u := s.st.byID[r.vars[0]]
	if u == nil {
		return notFound("user_id").reply()
	}
	return ok(renderUser(u))
}

// userFields are the profile parameters of create and modify.
var userFields = []string{"email", "realname", "firstname", "lastname", "notes"}

// applyUserParams sets on u the create/modify parameters present in p.
func applyUserParams(u *user, p url.Values) *apiError {
	for _, f := range userFields {
		if !p.Has(f) {
			continue
		}
		v := p.Get(f)
		switch f {
		case "email":
			if v != "" && !plausibleEmail(v) {
				return invalid("email")
			}
			u.email = v
		case "realname":
			u.realname = v
		case "firstname":
			u.firstname = v
		case "lastname":
			u.lastname = v
		case "notes":
			u.notes = v
		}
	}
	if p.Has("status") {
		st := strings.ToLower(p.Get("status"))
		if !validStatus(st, false) { // "locked out" and "pending deletion" are set by Duo, not by the API
			return invalid("status")
		}
		u.status = st
	}
	for i := 0; i < 4; i++ {
		if k := aliasKey(i); p.Has(k) {
			u.aliases[i] = strings.TrimSpace(p.Get(k))
		}
	}
	if p.Has("aliases") {
		// URL-encoded pairs, e.g. "alias1=joe&alias2=j@x"; other positions are kept.
		pairs, err := url.ParseQuery(p.Get("aliases"))
		if err != nil {
			return invalid("aliases")
		}
		for k, v := range pairs {
			n, err := strconv.Atoi(strings.TrimPrefix(k, "alias"))
			if !strings.HasPrefix(k, "alias") || err != nil || n < 1 || n > maxAliases || len(v) != 1 {
				return invalid("aliases")
			}
			u.aliases[n-1] = strings.TrimSpace(v[0])
		}
	}
	return nil
}

func plausibleEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n<>,;")
}

// checkNames refuses names that collide with another user's username or
// alias, or with each other. taken is an extra set of normalised names (the
// other users of a bulk create).
func (s *Server) checkNames(u *user, self *user, taken map[string]bool) *apiError {
	seen := map[string]bool{}
	for i, n := range append([]string{u.username}, u.aliases[:]...) {
		if n == "" {
			continue
		}
		field := "username"
		if i > 0 {
			field = aliasKey(i - 1)
		}
		key := s.st.norm(n)
		if s.st.nameTaken(n, self) || seen[key] || taken[key] {
			return invalid(field)
		}
		seen[key] = true
	}
	return nil
}

func createUser(s *Server, r *apiRequest) reply {
	name := strings.TrimSpace(r.params.Get("username"))
	if name == "" {
		return missing("username").reply()
	}
	u := &user{username: name, status: "active", created: r.now.Unix()}
	if err := applyUserParams(u, r.params); err != nil {
		return err.reply()
	}
	if err := s.checkNames(u, nil, nil); err != nil {
		return err.reply()
	}
	s.st.addUser(u)
	return ok(renderUser(u))
}

func modifyUser(s *Server, r *apiRequest) reply {
	u := s.st.byID[r.vars[0]]
	if u == nil {
		return notFound("user_id").reply()
	}
	next := *u
	if r.params.Has("username") {
		next.username = strings.TrimSpace(r.params.Get("username"))
		if next.username == "" {
			return invalid("username").reply()
		}
	}
	if err := applyUserParams(&next, r.params); err != nil {
		return err.reply()
	}
	if err := s.checkNames(&next, u, nil); err != nil {
		return err.reply()
	}
	old := u.names()
	*u = next
	s.st.reindexNames(u, old)
	return ok(renderUser(u))
}

func deleteUser(s *Server, r *apiRequest) reply {
	// Deleting a user that is already gone does nothing (duo_client_python).
	if u := s.st.byID[r.vars[0]]; u != nil {
		s.st.deleteUser(u)
	}
	return ok("")
}

// bulkUser is one entry of bulk_create's users array: only the fields Duo
// documents. Others are refused, so a client never relies on a field Duo
// may silently drop (aliases, for one, are not documented here).
type bulkUser struct {
	Username  *string `json:"username"`
	Realname  *string `json:"realname"`
	Email     *string `json:"email"`
	Status    *string `json:"status"`
	Notes     *string `json:"notes"`
	Firstname *string `json:"firstname"`
	Lastname  *string `json:"lastname"`
}

func (b bulkUser) params() url.Values {
	p := url.Values{}
	for k, v := range map[string]*string{"realname": b.Realname, "email": b.Email, "status": b.Status,
		"notes": b.Notes, "firstname": b.Firstname, "lastname": b.Lastname} {
		if v != nil {
			p.Set(k, *v)
		}
	}
	return p
}

func bulkCreate(s *Server, r *apiRequest) reply {
	if !r.params.Has("users") {
		return missing("users").reply()
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(r.params.Get("users"))))
	dec.DisallowUnknownFields()
	var list []bulkUser
	if err := dec.Decode(&list); err != nil {
		return invalid("users: " + err.Error()).reply()
	}
	if len(list) == 0 || len(list) > 100 {
		return invalid("users: between 1 and 100 users").reply()
	}
	// All or nothing: check every user before creating any.
	taken := map[string]bool{}
	var created []*user
	for i, b := range list {
		if b.Username == nil || strings.TrimSpace(*b.Username) == "" {
			return missing(fmt.Sprintf("users[%d].username", i)).reply()
		}
		u := &user{username: strings.TrimSpace(*b.Username), status: "active", created: r.now.Unix()}
		if err := applyUserParams(u, b.params()); err != nil {
			err.detail = fmt.Sprintf("users[%d].%s", i, err.detail)
			return err.reply()
		}
		if err := s.checkNames(u, nil, taken); err != nil {
			err.detail = fmt.Sprintf("users[%d].%s", i, err.detail)
			return err.reply()
		}
		taken[s.st.norm(u.username)] = true
		created = append(created, u)
	}
	out := make([]userJSON, 0, len(created))
	for _, u := range created {
		s.st.addUser(u)
		out = append(out, renderUser(u))
	}
	return ok(out)
}

func enroll(s *Server, r *apiRequest) reply {
	p := r.params
	name := strings.TrimSpace(p.Get("username"))
	if name == "" {
		return missing("username").reply()
	}
	email := strings.TrimSpace(p.Get("email"))
	if email == "" {
		return missing("email").reply()
	}
	if !plausibleEmail(email) {
		return invalid("email").reply()
	}
	valid := 2592000 // Duo's default: 30 days
	if p.Has("valid_secs") {
		n, err := strconv.Atoi(p.Get("valid_secs"))
		if err != nil || n < 0 {
			return invalid("valid_secs").reply()
		}
		valid = n
	}
	u := s.st.lookup(name)
	if u == nil {
		return notFound("username").reply()
	}
	code := s.st.newCode()
	s.st.outbox = append(s.st.outbox, Enrollment{Username: name, UserID: u.id, Email: email, ValidSecs: valid,
		Code: code, SentAt: r.now.UTC()})
	return ok(code)
}

func listUserGroups(s *Server, r *apiRequest) reply {
	u := s.st.byID[r.vars[0]]
	if u == nil {
		return notFound("user_id").reply()
	}
	limit, offset, rows, aerr := s.paging(r.params, 100, 500)
	if aerr != nil {
		return aerr.reply()
	}
	lo, hi := window(len(u.groups), offset, rows)
	out := make([]groupJSON, 0, hi-lo)
	for _, g := range u.groups[lo:hi] {
		out = append(out, renderGroup(g))
	}
	return okList(out, pageMeta(len(u.groups), offset, limit, hi-lo))
}

func addUserGroup(s *Server, r *apiRequest) reply {
	u := s.st.byID[r.vars[0]]
	if u == nil {
		return notFound("user_id").reply()
	}
	gid := r.params.Get("group_id")
	if gid == "" {
		return missing("group_id").reply()
	}
	g := s.st.groupByID[gid]
	if g == nil {
		return invalid("group_id").reply()
	}
	if !u.inGroup(g) && len(u.groups) >= maxGroupsPerUser {
		// Duo's answer to exceeding a one-to-many limit (duo.com/docs/rate-limits).
		return errf(http.StatusInternalServerError, codeInternal, "").reply()
	}
	s.st.join(u, g) // an existing membership is a no-op
	return ok("")
}

func removeUserGroup(s *Server, r *apiRequest) reply {
	u := s.st.byID[r.vars[0]]
	if u == nil {
		return notFound("user_id").reply()
	}
	if g := s.st.groupByID[r.vars[1]]; g != nil {
		s.st.leave(u, g) // 200 even if the user was not a member
	}
	return ok("")
}

func listGroups(s *Server, r *apiRequest) reply {
	if r.params.Has("group_id_list") {
		list, err := jsonList(r.params, "group_id_list")
		if err != nil {
			return err.reply()
		}
		out := []groupJSON{}
		for _, id := range list {
			if g := s.st.groupByID[id]; g != nil {
				out = append(out, renderGroup(g))
			}
		}
		return okList(out, metadata{TotalObjects: len(out)})
	}
	limit, offset, rows, aerr := s.paging(r.params, 100, 100)
	if aerr != nil {
		return aerr.reply()
	}
	lo, hi := window(len(s.st.groups), offset, rows)
	out := make([]groupJSON, 0, hi-lo)
	for _, g := range s.st.groups[lo:hi] {
		out = append(out, renderGroup(g))
	}
	return okList(out, pageMeta(len(s.st.groups), offset, limit, hi-lo))
}

func createGroup(s *Server, r *apiRequest) reply {
	name := strings.TrimSpace(r.params.Get("name"))
	if name == "" {
		return missing("name").reply()
	}
	if s.st.groupByName[s.st.norm(name)] != nil {
		return invalid("name").reply()
	}
	g := &group{name: name, desc: r.params.Get("desc"), status: "active"}
	if r.params.Has("status") {
		g.status = strings.ToLower(r.params.Get("status"))
		if !validStatus(g.status, false) {
			return invalid("status").reply()
		}
	}
	s.st.addGroup(g)
	return ok(renderGroup(g))
}

func getGroup(s *Server, r *apiRequest) reply {
	g := s.st.groupByID[r.vars[0]]
	if g == nil {
		return notFound("group_id").reply()
	}
	return ok(renderGroup(g))
}

func listGroupUsers(s *Server, r *apiRequest) reply {
	g := s.st.groupByID[r.vars[0]]
	if g == nil {
		return notFound("group_id").reply()
	}
	limit, offset, rows, aerr := s.paging(r.params, 100, 500)
	if aerr != nil {
		return aerr.reply()
	}
	lo, hi := window(len(g.members), offset, rows)
	out := make([]groupUserJSON, 0, hi-lo)
	for _, u := range g.members[lo:hi] {
		out = append(out, groupUserJSON{UserID: u.id, Username: u.username})
	}
	return okList(out, pageMeta(len(g.members), offset, limit, hi-lo))
}
