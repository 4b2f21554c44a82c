package duo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
)

func checkAllInOrder(t *testing.T, users []duo.User, n int) {
	t.Helper()
	if len(users) != n {
		t.Fatalf("got %d users, want %d", len(users), n)
	}
	for i, u := range users {
		if want := fmt.Sprintf("DU%018d", i); u.ID != want {
			t.Fatalf("user %d is %s, want %s (order or duplicates wrong)", i, u.ID, want)
		}
	}
}

func TestListUsersFullPages(t *testing.T) {
	const n = 1000
	f := newFake(t, usersList(n, func(int) int { return 300 }))
	c, _ := newClient(t, f)
	users, total, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if total != n {
		t.Errorf("total = %d, want %d", total, n)
	}
	checkAllInOrder(t, users, n)
	if got := f.count("GET", "/admin/v1/users"); got != 4 { // ceil(1000/300)
		t.Errorf("%d calls, want 4", got)
	}
	for _, r := range f.requests() {
		if l := r.Params.Get("limit"); l != "300" && r.Params.Get("offset") != "900" {
			t.Errorf("offset %s asked limit %s, want 300", r.Params.Get("offset"), l)
		}
	}
	u := users[3]
	if u.Username != "user00003@example.com" || len(u.Aliases) != 1 || u.Aliases[0] != "user00003" ||
		u.IsEnrolled || len(u.Groups) != 1 || u.Groups[0].Name != "MFA Users" {
		t.Errorf("user decoded as %+v", u)
	}
}

// Duo may return fewer rows than limit: the reader must continue from
// next_offset and use as few calls as the cap allows.
func TestListUsersCappedPages(t *testing.T) {
	const n = 1000
	f := newFake(t, usersList(n, func(int) int { return 150 }))
	c, _ := newClient(t, f)
	users, _, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkAllInOrder(t, users, n)
	if got := f.count("GET", "/admin/v1/users"); got != 7 { // ceil(1000/150)
		t.Errorf("%d calls, want 7", got)
	}
}

// Pages of irregular sizes (shorter than the first) are continued.
func TestListUsersIrregularShortPages(t *testing.T) {
	const n = 2000
	f := newFake(t, usersList(n, func(offset int) int { return 37 + offset%113 }))
	c, _ := newClient(t, f)
	users, total, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if total != n {
		t.Errorf("total = %d", total)
	}
	checkAllInOrder(t, users, n)
}

func TestListUsersFailedPageFailsTheRead(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status, code int
		wantCalls    int
	}{
		{"server error after retries", 500, 50001, 6},
		{"client error at once", 400, 40002, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := usersList(900, func(int) int { return 300 })
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
				if req.Params.Get("offset") == "600" {
					failure(w, tc.status, tc.code, "boom", "offset")
					return
				}
				good(w, r, req)
			})
			c, _ := newClient(t, f)
			users, _, err := c.ListUsers(context.Background())
			if err == nil || users != nil {
				t.Fatalf("got %d users and err %v, want no users and an error", len(users), err)
			}
			var de *duo.Error
			if !errors.As(err, &de) || de.Code != tc.code || de.HTTPStatus != tc.status || de.Detail != "offset" {
				t.Errorf("error %v is not the typed Duo error", err)
			}
			calls := 0
			for _, r := range f.requests() {
				if r.Params.Get("offset") == "600" {
					calls++
				}
			}
			if calls != tc.wantCalls {
				t.Errorf("failed page tried %d times, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// If the list shrinks while pages are read, rows would shift between
// offsets and one would be missed: the read must fail, not return it.
func TestListUsersChangedDuringRead(t *testing.T) {
	f := newFake(t, nil)
	calls := 0
	f.handle = func(w http.ResponseWriter, r *http.Request, req seenReq) {
		calls++
		n := 900
		if req.Params.Get("offset") != "0" {
			n = 899 // someone deleted a user after the first page
		}
		usersList(n, func(int) int { return 300 })(w, r, req)
	}
	c, _ := newClient(t, f, func(c *duo.Config) { c.Concurrency = 1 })
	users, _, err := c.ListUsers(context.Background())
	if err == nil {
		t.Fatalf("read %d users from a changing list without error", len(users))
	}
}

func TestGroupsPagedAt100(t *testing.T) {
	const n = 250
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		var offset, limit int
		fmt.Sscan(req.Params.Get("offset"), &offset)
		fmt.Sscan(req.Params.Get("limit"), &limit)
		if limit > 100 {
			failure(w, 400, 40002, "Invalid request parameters", "limit")
			return
		}
		var rows []any
		for i := offset; i < min(offset+limit, n); i++ {
			rows = append(rows, map[string]any{"group_id": fmt.Sprintf("DG%018d", i), "name": fmt.Sprintf("g%d", i), "desc": "", "status": "Active"})
		}
		meta := map[string]any{"total_objects": n}
		if offset+len(rows) < n {
			meta["next_offset"] = offset + len(rows)
		}
		success(w, rows, meta)
	})
	c, _ := newClient(t, f)
	groups, err := c.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != n || groups[0].Name != "g0" || groups[n-1].Name != fmt.Sprintf("g%d", n-1) {
		t.Fatalf("got %d groups, first %+v", len(groups), groups[0])
	}
	if got := f.count("GET", "/admin/v1/groups"); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
}

// lookupServer serves a big account: pages, and username_list lookups.
func lookupServer(n int) func(w http.ResponseWriter, r *http.Request, req seenReq) {
	list := usersList(n, func(int) int { return 300 })
	return func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if raw := req.Params.Get("username_list"); raw != "" {
			var names []string
			if err := json.Unmarshal([]byte(raw), &names); err != nil || len(names) > 100 {
				failure(w, 400, 40002, "Invalid request parameters", "username_list")
				return
			}
			var rows []any
			for _, name := range names {
				var i int
				if _, err := fmt.Sscanf(name, "user%05d@example.com", &i); err == nil && i < n {
					rows = append(rows, fakeUser(i))
				}
			}
			success(w, rows, nil)
			return
		}
		list(w, r, req)
	}
}

func TestUsersForPicksTheCheaperRead(t *testing.T) {
	names := func(k int) []string {
		var out []string
		for i := range k {
			out = append(out, fmt.Sprintf("user%05d@example.com", i*7), fmt.Sprintf("user%05d@example.com", i*7)) // duplicates too
		}
		return append(out, "nobody@example.com")
	}
	t.Run("few names in a big account: username_list", func(t *testing.T) {
		f := newFake(t, lookupServer(30000))
		c, _ := newClient(t, f)
		users, total, err := c.UsersFor(context.Background(), names(150))
		if err != nil {
			t.Fatal(err)
		}
		if total != 30000 || len(users) != 150 {
			t.Fatalf("total %d, %d users; want 30000, 150", total, len(users))
		}
		// 1 first page (for total_objects) + 2 lookups of ≤100 names.
		if got := f.count("GET", "/admin/v1/users"); got != 3 {
			t.Errorf("%d calls, want 3", got)
		}
		if s := c.Stats(); s.Calls["GET /admin/v1/users"] != 3 || s.TotalCalls != 3 {
			t.Errorf("client stats %+v disagree with the server", s)
		}
	})
	t.Run("many names in a small account: paging", func(t *testing.T) {
		f := newFake(t, lookupServer(900))
		c, _ := newClient(t, f)
		users, total, err := c.UsersFor(context.Background(), names(400))
		if err != nil {
			t.Fatal(err)
		}
		if total != 900 || len(users) != 900 {
			t.Fatalf("total %d, %d users; want all 900", total, len(users))
		}
		if got := f.count("GET", "/admin/v1/users"); got != 3 {
			t.Errorf("%d calls, want 3", got)
		}
		for _, r := range f.requests() {
			if r.Params.Has("username_list") {
				t.Error("looked up names although paging was cheaper")
			}
		}
	})
}

func TestGetUserRejectsBadIDWithoutACall(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { success(w, fakeUser(1), nil) })
	c, _ := newClient(t, f)
	for _, id := range []string{"", "../users", "DU1?x=1", "DU 1"} {
		if _, err := c.GetUser(context.Background(), id); err == nil {
			t.Errorf("GetUser(%q) did not fail", id)
		}
		if err := c.AddUserToGroup(context.Background(), id, "DG1"); err == nil {
			t.Errorf("AddUserToGroup(%q) did not fail", id)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests made for invalid ids", n)
	}
	u, err := c.GetUser(context.Background(), "DU000000000000000001")
	if err != nil || u.ID != fmt.Sprintf("DU%018d", 1) {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	if f.requests()[0].Path != "/admin/v1/users/DU000000000000000001" {
		t.Errorf("path %s", f.requests()[0].Path)
	}
}

// The client-side limiter paces every goroutine together: 600 reads a
// minute is a burst of 10, then one every 100 ms.
func TestReadLimiterSharedByGoroutines(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { success(w, fakeUser(1), nil) })
	c, _ := newClient(t, f, func(c *duo.Config) { c.ReadsPerMinute = 600 })
	start := time.Now()
	var wg sync.WaitGroup
	for range 13 {
		wg.Go(func() {
			if _, err := c.GetUser(context.Background(), "DU1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A lower bound only: the limiter grants the 13th read 300ms in.
	if took := time.Since(start); took < 290*time.Millisecond {
		t.Errorf("13 reads took %v, want at least 300ms at 10/s after a burst of 10", took)
	}
	if n := len(f.requests()); n != 13 {
		t.Errorf("%d requests, want 13", n)
	}
}

// Malformed answers fail the call with an error; none panics, and none
// passes for an empty account.
func TestMalformedAnswersAreErrors(t *testing.T) {
	bodies := []string{
		``, `null`, `[]`, `{}`, `"OK"`, `{"stat":"OK"}`, `{"stat":"OK","response":null}`,
		`{"stat":"OK","response":{}}`, `{"stat":"OK","response":"x"}`, `{"stat":"OK","response":[{"user_id":5}]}`,
		`{"stat":"OK","response":[],"metadata":{"next_offset":"x"}}`,
		`{"stat":"OK","response":[],"metadata":{"next_offset":0,"total_objects":10}}`,
		`{"stat":"OK","response":[{"user_id":"DU1"}],"metadata":{"next_offset":1,"total_objects":99999999999}}`,
		`{"stat":"FAIL"}`, `{"stat":"FAIL","code":"abc","message":7}`, `{"stat":"OK","response":[` + strings.Repeat("[", 100000),
	}
	for _, body := range bodies {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { fmt.Fprint(w, body) })
		c, _ := newClient(t, f, func(c *duo.Config) { c.MaxAttempts = 2 })
		ctx := context.Background()
		if users, _, err := c.ListUsers(ctx); err == nil {
			t.Errorf("ListUsers on %.60q: %d users and no error", body, len(users))
		}
		if _, err := c.Groups(ctx); err == nil {
			t.Errorf("Groups on %.60q: no error", body)
		}
		if _, err := c.GetUser(ctx, "DU1"); err == nil {
			t.Errorf("GetUser on %.60q: no error", body)
		}
		if _, err := c.CreateUser(ctx, jdoe); err == nil {
			t.Errorf("CreateUser on %.60q: no error", body)
		}
		// A list of users with ids is a valid username_list answer.
		validList := strings.Contains(body, `"response":[]`) || strings.Contains(body, `"user_id":"DU1"`)
		if _, err := c.UsersByName(ctx, []string{"a"}); err == nil && !validList {
			t.Errorf("UsersByName on %.60q: no error", body)
		}
	}
}

// Without total_objects the reader follows next_offset page by page.
func TestListUsersWithoutTotalFollowsNextOffset(t *testing.T) {
	const n = 700
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		var offset int
		fmt.Sscan(req.Params.Get("offset"), &offset)
		var rows []any
		for i := offset; i < min(offset+250, n); i++ { // a cap the client cannot know
			rows = append(rows, fakeUser(i))
		}
		meta := map[string]any{}
		if offset+len(rows) < n {
			meta["next_offset"] = offset + len(rows)
		}
		success(w, rows, meta)
	})
	c, _ := newClient(t, f)
	users, total, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if total != n {
		t.Errorf("total %d, want %d", total, n)
	}
	checkAllInOrder(t, users, n)
	if got := f.count("GET", "/admin/v1/users"); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
}

// Without total_objects only a size bound ends a list of full pages that
// always points further on: the read fails at it, with an error that says
// so, instead of reading until memory runs out.
func TestListUsersWithoutTotalIsBounded(t *testing.T) {
	t.Run("endless full pages", func(t *testing.T) {
		page := make([]any, 300)
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
			var offset int
			fmt.Sscan(req.Params.Get("offset"), &offset)
			for i := range page {
				page[i] = map[string]any{"user_id": fmt.Sprintf("DU%018d", offset+i), "username": fmt.Sprint("u", offset+i)}
			}
			success(w, page, map[string]any{"next_offset": offset + len(page)})
		})
		c, _ := newClient(t, f)
		users, _, err := c.ListUsers(context.Background())
		if err == nil || users != nil {
			t.Fatalf("endless list: %d users and error %v, want an error", len(users), err)
		}
		for _, want := range []string{"/admin/v1/users", "total_objects", "25000 rows"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		// 25,000 rows are 84 pages of 300 (the last one past the bound).
		if got := f.count("GET", "/admin/v1/users"); got > 84 {
			t.Errorf("%d calls, want at most 84", got)
		}
	})
	t.Run("next_offset jumps past the bound", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
			var offset int
			fmt.Sscan(req.Params.Get("offset"), &offset)
			success(w, []any{fakeUser(offset)}, map[string]any{"next_offset": offset + 10_000_000})
		})
		c, _ := newClient(t, f)
		if _, _, err := c.ListUsers(context.Background()); err == nil || !strings.Contains(err.Error(), "total_objects") {
			t.Fatalf("got error %v, want one about a list without total_objects", err)
		}
		if got := f.count("GET", "/admin/v1/users"); got != 1 {
			t.Errorf("%d calls, want 1: the jump is refused before it is followed", got)
		}
	})
	// A list read page by page although it states its size (its
	// next_offset does not match its page size) is bounded by that size.
	t.Run("stated total is the bound", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
			var offset int
			fmt.Sscan(req.Params.Get("offset"), &offset)
			next := map[int]int{0: 29_000, 29_000: 35_000}[offset]
			success(w, []any{fakeUser(offset), fakeUser(offset + 1)}, map[string]any{"next_offset": next, "total_objects": 30_000})
		})
		c, _ := newClient(t, f)
		_, _, err := c.ListUsers(context.Background())
		if err == nil || !strings.Contains(err.Error(), "total_objects 30000 and more than 30000 rows") {
			t.Fatalf("got error %v, want one bounded by total_objects 30000", err)
		}
		if got := f.count("GET", "/admin/v1/users"); got != 2 {
			t.Errorf("%d calls, want 2: offset 29000 is within the stated total, 35000 is not", got)
		}
	})
}

// An answer over the body limit fails the read at once, naming the
// endpoint and the limit: asking again would fetch the same answer.
func TestOversizedAnswerFailsWithoutRetry(t *testing.T) {
	for _, announced := range []bool{true, false} {
		t.Run(fmt.Sprintf("content-length=%v", announced), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
				const size = 17 << 20 // just over the 16 MiB limit
				if announced {
					w.Header().Set("Content-Length", fmt.Sprint(size))
				}
				row := []byte(`{"user_id":"DU000000000000000001","username":"a"},`)
				fmt.Fprint(w, `{"stat":"OK","response":[`)
				for n := 0; n < size; n += len(row) {
					if _, err := w.Write(row); err != nil {
						return // the client hung up, as it should
					}
				}
			})
			// A long attempt timeout: on a loaded machine reading 16 MiB must
			// not time out and be retried for that reason instead.
			c, _ := newClient(t, f, func(c *duo.Config) { c.MaxAttempts, c.Timeout = 3, time.Minute })
			_, _, err := c.ListUsers(context.Background())
			if err == nil {
				t.Fatal("an oversized answer was read")
			}
			for _, want := range []string{"/admin/v1/users", "larger than", "16 MiB"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if got := f.count("GET", "/admin/v1/users"); got != 1 {
				t.Errorf("%d calls, want 1 (no retry); error %v", got, err)
			}
		})
	}
}
