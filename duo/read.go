package duo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Paging limits of the Admin API.
const (
	usersPageLimit      = 300
	groupsPageLimit     = 100
	userGroupsPageLimit = 500
	listLookupMax       = 100 // username_list / user_id_list entries per call
)

// errListChanged means the list's total_objects moved during a paged read,
// so rows may have shifted between pages; the read is redone.
var errListChanged = errors.New("the list changed while it was being read")

const listReadTries = 3

// errNoResponse is a "stat":"OK" answer without the expected "response":
// treated as a failure, never as an empty account.
var errNoResponse = errors.New(`answer without a "response"`)

// maxListSize bounds a total_objects the reader believes (and plans
// segments for): far above any real account.
const maxListSize = 20_000_000

// maxSequentialRows bounds a list read that has no total_objects at all,
// where nothing else ends a server that keeps sending full pages with a
// further next_offset. Duo's list endpoints (and duotest) always send
// total_objects, and those reads are bounded by the count (at most
// maxListSize), so this bound only meets a proxy or a server that is not
// quite Duo. 25,000 rows (84 users pages, about 20 MB decoded) is far more
// than any user's groups or any account's groups, and stops a list that
// never ends within seconds rather than when memory runs out; a real
// account that large always states its size.
const maxSequentialRows = 25_000

// wireUser is a Duo user object as the Admin API sends it.
type wireUser struct {
	UserID        string            `json:"user_id"`
	Username      string            `json:"username"`
	Alias1        string            `json:"alias1"`
	Alias2        string            `json:"alias2"`
	Alias3        string            `json:"alias3"`
	Alias4        string            `json:"alias4"`
	Aliases       map[string]string `json:"aliases"`
	Email         string            `json:"email"`
	Realname      string            `json:"realname"`
	Firstname     string            `json:"firstname"`
	Lastname      string            `json:"lastname"`
	Notes         string            `json:"notes"`
	Status        string            `json:"status"`
	LockoutReason string            `json:"lockout_reason"`
	IsEnrolled    bool              `json:"is_enrolled"`
	Groups        []Group           `json:"groups"`
}

func (w wireUser) user() User {
	u := User{
		ID: w.UserID, Username: w.Username, Email: w.Email, Realname: w.Realname,
		Firstname: w.Firstname, Lastname: w.Lastname, Notes: w.Notes, Status: w.Status,
		LockoutReason: w.LockoutReason, IsEnrolled: w.IsEnrolled, Groups: w.Groups,
	}
	fields := []string{w.Alias1, w.Alias2, w.Alias3, w.Alias4}
	for i := 1; i <= 8; i++ {
		var a string
		if i <= len(fields) {
			a = fields[i-1]
		}
		if a == "" {
			a = w.Aliases["alias"+strconv.Itoa(i)]
		}
		if a != "" {
			u.Aliases = append(u.Aliases, a)
		}
	}
	return u
}

func (w wireUser) key() string { return w.UserID }

type wireGroup Group

func (g wireGroup) key() string { return g.ID }

// listSpec describes a paged list endpoint.
type listSpec struct {
	path     string
	endpoint string
	params   url.Values
	limit    int // the endpoint's maximum page size
}

type page[T any] struct {
	items    []T
	next     int
	hasNext  bool
	total    int
	hasTotal bool
}

func fetchPage[T interface{ key() string }](ctx context.Context, c *Client, spec listSpec, offset, limit int) (page[T], error) {
	params := cloneValues(spec.params)
	params.Set("limit", strconv.Itoa(limit))
	params.Set("offset", strconv.Itoa(offset))
	var p page[T]
	env, err := c.do(ctx, request{method: http.MethodGet, path: spec.path, endpoint: spec.endpoint, params: params,
		idempotent: true, out: &p.items})
	if err != nil {
		return page[T]{}, err
	}
	if p.items == nil { // absent or null; an empty page decodes as []
		return page[T]{}, fmt.Errorf("duo GET %s offset %d: %w", spec.path, offset, errNoResponse)
	}
	for i, it := range p.items {
		if it.key() == "" {
			return page[T]{}, fmt.Errorf("duo GET %s offset %d: row %d has no id", spec.path, offset, i)
		}
	}
	if m := env.Metadata; m != nil {
		if m.NextOffset != nil {
			p.next, p.hasNext = int(*m.NextOffset), true
		}
		if m.TotalObjects != nil {
			p.total, p.hasTotal = int(*m.TotalObjects), true
		}
	}
	if p.hasNext && p.next <= offset {
		return page[T]{}, fmt.Errorf("duo GET %s offset %d: next_offset %d does not advance", spec.path, offset, p.next)
	}
	return p, nil
}

// readList reads a whole paged list in Duo's order, retrying from scratch
// if the list changed under the read. Any failed page fails the read.
func readList[T interface{ key() string }](ctx context.Context, c *Client, spec listSpec) ([]T, int, error) {
	var err error
	for try := 1; try <= listReadTries; try++ {
		var first page[T]
		first, err = fetchPage[T](ctx, c, spec, 0, spec.limit)
		if err != nil {
			return nil, 0, err
		}
		var items []T
		var total int
		items, total, err = readRest(ctx, c, spec, first)
		if !errors.Is(err, errListChanged) {
			return items, total, err
		}
		c.log.Warn("duo list changed during read, reading again", "endpoint", spec.endpoint, "try", try)
	}
	return nil, 0, err
}

// readRest completes a read whose first page is known. Once total_objects
// is known, the rest is cut into segments of the size the server actually
// gave for the first page (it may give fewer rows than limit) and fetched
// concurrently; a segment that comes back short is continued from its
// next_offset, so no row is assumed and none is read twice.
func readRest[T interface{ key() string }](ctx context.Context, c *Client, spec listSpec, first page[T]) ([]T, int, error) {
	if !first.hasNext {
		return first.items, len(first.items), nil
	}
	step := len(first.items)
	if !first.hasTotal || step == 0 || first.next != step {
		return readSequential(ctx, c, spec, first)
	}
	total := first.total
	if total < 0 || total > maxListSize { // a negative one would panic in make below
		return nil, 0, fmt.Errorf("duo GET %s: implausible total_objects %d", spec.path, total)
	}
	type segment struct{ start, end int }
	var segs []segment
	for s := first.next; s < total; s += step {
		segs = append(segs, segment{s, min(s+step, total)})
	}
	results := make([][]T, len(segs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for i, seg := range segs {
		g.Go(func() error {
			var rows []T
			for off := seg.start; off < seg.end; {
				p, err := fetchPage[T](gctx, c, spec, off, min(spec.limit, seg.end-off))
				if err != nil {
					return err
				}
				if p.hasTotal && p.total != total {
					return fmt.Errorf("duo GET %s: total_objects went from %d to %d: %w", spec.path, total, p.total, errListChanged)
				}
				rows = append(rows, p.items...)
				switch {
				case p.hasNext:
					off = p.next
				case off+len(p.items) < total:
					return fmt.Errorf("duo GET %s: list ended at offset %d of %d: %w", spec.path, off+len(p.items), total, errListChanged)
				default:
					off = seg.end
				}
			}
			if len(rows) > seg.end-seg.start { // the server ignored limit
				rows = rows[:seg.end-seg.start]
			}
			results[i] = rows
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, total)
	out = append(out, first.items...)
	for _, r := range results {
		out = append(out, r...)
	}
	if err := checkUnique(out, total, spec.path); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// readSequential follows next_offset one page at a time: the fallback for
// a server that does not say total_objects.
func readSequential[T interface{ key() string }](ctx context.Context, c *Client, spec listSpec, first page[T]) ([]T, int, error) {
	out := append([]T(nil), first.items...)
	// A list that states a plausible size (read here because its
	// next_offset did not match its page size) is bounded by that size.
	bound, what := maxSequentialRows, "no total_objects"
	if first.hasTotal {
		what = fmt.Sprintf("total_objects %d", first.total)
		if first.total > bound && first.total <= maxListSize {
			bound = first.total
		}
	}
	for p := first; ; {
		// Checked on next_offset too, so that a jump far ahead fails
		// before it is followed.
		if len(out) > bound || p.hasNext && p.next > bound {
			return nil, 0, fmt.Errorf("duo GET %s: %s and more than %d rows (offset %d): "+
				"refusing a list that long", spec.path, what, bound, max(len(out), p.next))
		}
		if !p.hasNext {
			break
		}
		var err error
		if p, err = fetchPage[T](ctx, c, spec, p.next, spec.limit); err != nil {
			return nil, 0, err
		}
		// Without total_objects nothing else ends a list whose pages are
		// empty yet always point further on.
		if len(p.items) == 0 && p.hasNext {
			return nil, 0, fmt.Errorf("duo GET %s: an empty page with next_offset %d: the list does not end", spec.path, p.next)
		}
		out = append(out, p.items...)
	}
	if err := checkUnique(out, len(out), spec.path); err != nil {
		return nil, 0, err
	}
	return out, len(out), nil
}

// checkUnique refuses a read with duplicate or missing rows: offsets that
// shifted under the read must not reach the diff.
func checkUnique[T interface{ key() string }](rows []T, total int, path string) error {
	if len(rows) != total {
		return fmt.Errorf("duo GET %s: read %d rows, total_objects says %d: %w", path, len(rows), total, errListChanged)
	}
	seen := make(map[string]struct{}, len(rows))
	for _, r := range rows {
		k := r.key()
		if _, dup := seen[k]; dup && k != "" {
			return fmt.Errorf("duo GET %s: %s appears twice: %w", path, k, errListChanged)
		}
		seen[k] = struct{}{}
	}
	return nil
}

var usersSpec = listSpec{path: "/admin/v1/users", endpoint: "/admin/v1/users", limit: usersPageLimit}

// ListUsers returns every Duo user in Duo's order and total_objects.
func (c *Client) ListUsers(ctx context.Context) ([]User, int, error) {
	ws, total, err := readList[wireUser](ctx, c, usersSpec)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return users(ws), total, nil
}

// UsersFor returns the users that can match usernames (by username or
// alias) and the account's total user count, with whichever of paging all
// users or username_list lookups takes fewer calls. The first page is read
// either way: its total_objects is the total. When it pages, it returns
// every user (a superset), which the caller matches.
func (c *Client) UsersFor(ctx context.Context, usernames []string) ([]User, int, error) {
	names := distinct(usernames)
	for try := 1; ; try++ {
		first, err := fetchPage[wireUser](ctx, c, usersSpec, 0, usersPageLimit)
		if err != nil {
			return nil, 0, fmt.Errorf("read users: %w", err)
		}
		total := len(first.items)
		if first.hasTotal {
			total = first.total
		}
		if pagingCalls(first, total) <= ceilDiv(len(names), listLookupMax) {
			ws, total, err := readRest(ctx, c, usersSpec, first)
			if errors.Is(err, errListChanged) && try < listReadTries {
				continue
			}
			if err != nil {
				return nil, 0, fmt.Errorf("read users: %w", err)
			}
			return users(ws), total, nil
		}
		found, err := c.UsersByName(ctx, names)
		if err != nil {
			return nil, 0, err
		}
		return found, total, nil
	}
}

// pagingCalls is how many more calls paging the rest would take.
func pagingCalls[T any](first page[T], total int) int {
	if !first.hasNext {
		return 0
	}
	if step := len(first.items); step > 0 {
		return ceilDiv(total-first.next, step)
	}
	return ceilDiv(total, usersPageLimit)
}

// UsersByName looks up usernames (matched by Duo against usernames, and per
// Duo's documentation of username, aliases) with username_list, 100 per
// call, calls made concurrently. Names not found are simply absent.
func (c *Client) UsersByName(ctx context.Context, usernames []string) ([]User, error) {
	names := distinct(usernames)
	var chunks [][]string
	for i := 0; i < len(names); i += listLookupMax {
		chunks = append(chunks, names[i:min(i+listLookupMax, len(names))])
	}
	results := make([][]wireUser, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for i, chunk := range chunks {
		g.Go(func() error {
			list, err := json.Marshal(chunk)
			if err != nil {
				return err
			}
			_, err = c.do(gctx, request{method: http.MethodGet, path: "/admin/v1/users", endpoint: "/admin/v1/users",
				params: url.Values{"username_list": {string(list)}}, idempotent: true, out: &results[i]})
			if err == nil && results[i] == nil {
				err = fmt.Errorf("duo GET /admin/v1/users username_list: %w", errNoResponse)
			}
			for j := 0; err == nil && j < len(results[i]); j++ {
				if results[i][j].UserID == "" {
					err = fmt.Errorf("duo GET /admin/v1/users username_list: row %d has no user_id", j)
				}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("look up %d users by name: %w", len(names), err)
	}
	var out []User
	seen := map[string]bool{}
	for _, r := range results {
		for _, w := range r {
			if !seen[w.UserID] {
				seen[w.UserID] = true
				out = append(out, w.user())
			}
		}
	}
	return out, nil
}

// userByName returns the user whose username or alias is name, if any.
func (c *Client) userByName(ctx context.Context, name string) (User, bool, error) {
	var ws []wireUser
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/users", endpoint: "/admin/v1/users",
		params: url.Values{"username": {name}}, idempotent: true, out: &ws})
	if err != nil {
		return User{}, false, err
	}
	if len(ws) == 0 {
		return User{}, false, nil
	}
	return ws[0].user(), true, nil
}

// GetUser returns one user by id.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	if err := checkID("user id", id); err != nil {
		return User{}, err
	}
	var w wireUser
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/v1/users/" + id, endpoint: "/admin/v1/users/{id}",
		idempotent: true, out: &w})
	if err == nil && w.UserID == "" {
		err = errNoResponse
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return w.user(), nil
}

// UserGroups returns every group the user is in.
func (c *Client) UserGroups(ctx context.Context, id string) ([]Group, error) {
	if err := checkID("user id", id); err != nil {
		return nil, err
	}
	spec := listSpec{path: "/admin/v1/users/" + id + "/groups", endpoint: "/admin/v1/users/{id}/groups", limit: userGroupsPageLimit}
	gs, _, err := readList[wireGroup](ctx, c, spec)
	if err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", id, err)
	}
	return groups(gs), nil
}

// Groups returns every group in the account, in Duo's order.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	gs, _, err := readList[wireGroup](ctx, c, listSpec{path: "/admin/v1/groups", endpoint: "/admin/v1/groups", limit: groupsPageLimit})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return groups(gs), nil
}

func users(ws []wireUser) []User {
	out := make([]User, len(ws))
	for i, w := range ws {
		out[i] = w.user()
	}
	return out
}

func groups(gs []wireGroup) []Group {
	out := make([]Group, len(gs))
	for i, g := range gs {
		out[i] = Group(g)
	}
	return out
}

// distinct drops empty and repeated names, keeping the first order.
func distinct(names []string) []string {
	seen := make(map[string]bool, len(names))
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// Duo ids are short alphanumeric strings (DU…, DG…); anything else would
// change the path that is signed and requested.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

func checkID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid Duo %s %q", what, id)
	}
	return nil
}
