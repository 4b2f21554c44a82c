package duo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
)

var jdoe = duo.NewUser{
	Username: "jdoe@example.com", Aliases: []string{"jdoe", `GLOBAL\jdoe`}, Email: "jdoe@example.com",
	Realname: "John Doe", Firstname: "John", Lastname: "Doe", Notes: "RITM0010001 + café & co~/*=",
}

// userStore is a tiny stateful user table behind the fake's handlers.
type userStore struct {
	mu    sync.Mutex
	users map[string]map[string]any // username → user JSON
}

func (s *userStore) create(p map[string][]string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]map[string]any{}
	}
	name := p["username"][0]
	u := map[string]any{"user_id": fmt.Sprintf("DU%018d", len(s.users)+1), "username": name, "status": "active"}
	for _, k := range []string{"alias1", "alias2", "email", "realname", "notes"} {
		if v, ok := p[k]; ok {
			u[k] = v[0]
		}
	}
	s.users[name] = u
	return u
}

func (s *userStore) lookup(name string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[name]; ok {
		return []any{u}
	}
	return []any{}
}

func (s *userStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.users)
}

// The trap: duo_api_golang retries a 429 itself, re-sending the POST with
// an empty body and the old Date. The client must retry on its own, with
// the whole body, a fresh Date and a valid signature.
func TestCreateUserRetries429WithFullBody(t *testing.T) {
	var store userStore
	var posts atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if posts.Add(1) == 1 {
			w.Header().Set("Retry-After", "1") // a second, so the Date must change
			failure(w, 429, 42901, "Too Many Requests", "")
			return
		}
		if req.Params.Get("username") == "" {
			failure(w, 400, 40001, "Missing required request parameters", "username")
			return
		}
		success(w, store.create(req.Params), nil)
	})
	c, _ := newClient(t, f)
	u, err := c.CreateUser(context.Background(), jdoe)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != jdoe.Username || len(u.Aliases) != 2 || u.Aliases[1] != `GLOBAL\jdoe` || u.Notes != jdoe.Notes {
		t.Errorf("created %+v", u)
	}
	reqs := f.requests()
	if len(reqs) != 2 || store.len() != 1 {
		t.Fatalf("%d requests, %d users; want 2 and 1", len(reqs), store.len())
	}
	for i, r := range reqs {
		if !r.SigOK {
			t.Errorf("request %d: bad signature", i+1)
		}
		for k, want := range map[string]string{"username": "jdoe@example.com", "alias1": "jdoe", "alias2": `GLOBAL\jdoe`,
			"email": "jdoe@example.com", "realname": "John Doe", "firstname": "John", "lastname": "Doe", "notes": jdoe.Notes} {
			if got := r.Params.Get(k); got != want {
				t.Errorf("request %d: %s = %q, want %q", i+1, k, got, want)
			}
		}
	}
	if reqs[0].Date == reqs[1].Date {
		t.Errorf("the retry reused the Date %q", reqs[0].Date)
	}
	if s := c.Stats(); s.RateLimited != 1 || s.Retries != 1 || s.Calls["POST /admin/v1/users"] != 2 {
		t.Errorf("stats %+v", s)
	}
}

// One worker's 429 pauses every worker: a call started after it waits.
func TestShared429Pause(t *testing.T) {
	var mu sync.Mutex
	var served429 time.Time
	var arrivals []time.Time
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		mu.Lock()
		defer mu.Unlock()
		if served429.IsZero() {
			failure(w, 429, 42901, "Too Many Requests", "")
			served429 = time.Now()
			return
		}
		arrivals = append(arrivals, req.At)
		success(w, fakeUser(1), nil)
	})
	const pauseBase = 400 * time.Millisecond // the pause is at least half of it
	c, _ := newClient(t, f, func(c *duo.Config) { c.RetryBase = pauseBase; c.RetryMax = pauseBase })
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { _, err := c.GetUser(ctx, "DU1"); first <- err }()
	for c.Stats().RateLimited == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := c.GetUser(ctx, "DU2"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 5 {
		t.Fatalf("%d successful arrivals, want 5", len(arrivals))
	}
	for _, at := range arrivals {
		if gap := at.Sub(served429); gap < pauseBase/2-20*time.Millisecond {
			t.Errorf("a request arrived %v after the 429, inside the shared pause", gap)
		}
	}
}

func TestServerErrorsRetriedAndBounded(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		failure(w, 503, 50301, "Service Unavailable", "")
	})
	c, _ := newClient(t, f, func(c *duo.Config) { c.MaxAttempts = 4 })
	_, err := c.GetUser(context.Background(), "DU1")
	var de *duo.Error
	if !errors.As(err, &de) || de.HTTPStatus != 503 || de.Code != 50301 || de.Message != "Service Unavailable" {
		t.Fatalf("error %v, want the typed 503", err)
	}
	if n := len(f.requests()); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}
	if s := c.Stats(); s.Retries != 3 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestClientErrorsNotRetried(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		failure(w, 400, 40002, "Invalid request parameters", "alias1")
	})
	c, _ := newClient(t, f)
	_, err := c.CreateUser(context.Background(), jdoe)
	var de *duo.Error
	if !errors.As(err, &de) || de.Code != 40002 || de.Detail != "alias1" || de.Method != "POST" || de.Path != "/admin/v1/users" {
		t.Fatalf("error %v, want the typed 40002", err)
	}
	for _, want := range []string{`"jdoe@example.com"`, "HTTP 400", "40002", "alias1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %s", err, want)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// A create whose answer was lost is settled by looking the username up.
func TestCreateUserUnknownOutcome(t *testing.T) {
	cases := []struct {
		name      string
		firstPost func(w http.ResponseWriter, r *http.Request, s *userStore, req seenReq)
		wantPosts int
	}{
		{"created, connection dropped", func(w http.ResponseWriter, r *http.Request, s *userStore, req seenReq) {
			s.create(req.Params)
			drop(w)
		}, 1},
		{"created, answer too slow", func(w http.ResponseWriter, r *http.Request, s *userStore, req seenReq) {
			s.create(req.Params)
			select { // beyond the client's 1s timeout, until it hangs up
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, 1},
		{"not created, connection dropped", func(w http.ResponseWriter, r *http.Request, s *userStore, req seenReq) {
			drop(w)
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var store userStore
			var posts atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
				switch req.Method {
				case "GET":
					success(w, store.lookup(req.Params.Get("username")), nil)
				case "POST":
					if posts.Add(1) == 1 {
						tc.firstPost(w, r, &store, req)
						return
					}
					if len(store.lookup(req.Params.Get("username"))) > 0 {
						failure(w, 400, 40002, "Invalid request parameters", "username")
						return
					}
					success(w, store.create(req.Params), nil)
				}
			})
			c, _ := newClient(t, f, func(c *duo.Config) { c.Timeout = time.Second })
			u, err := c.CreateUser(context.Background(), jdoe)
			if err != nil {
				t.Fatal(err)
			}
			if u.Username != jdoe.Username || u.ID == "" || store.len() != 1 {
				t.Errorf("got %+v with %d users in Duo", u, store.len())
			}
			if int(posts.Load()) != tc.wantPosts {
				t.Errorf("%d POSTs, want %d", posts.Load(), tc.wantPosts)
			}
			if s := c.Stats(); s.Unknown != 1 || s.Verified != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// The first create lands only after the verifying read: the retry gets
// 40002, and the client returns the user instead of failing.
func TestCreateUserLateLanding(t *testing.T) {
	var store userStore
	var mu sync.Mutex
	var pending map[string][]string
	var posts atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		mu.Lock()
		defer mu.Unlock()
		switch req.Method {
		case "GET":
			success(w, store.lookup(req.Params.Get("username")), nil)
			if pending != nil {
				store.create(pending) // lands now
				pending = nil
			}
		case "POST":
			if posts.Add(1) == 1 {
				pending = req.Params
				drop(w)
				return
			}
			failure(w, 400, 40002, "Invalid request parameters", "username")
		}
	})
	c, _ := newClient(t, f)
	u, err := c.CreateUser(context.Background(), jdoe)
	if err != nil || u.Username != jdoe.Username || store.len() != 1 {
		t.Fatalf("got %+v, %v with %d users", u, err, store.len())
	}
}

func TestEnrollUser(t *testing.T) {
	t.Run("params", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { success(w, "CODE123", nil) })
		c, _ := newClient(t, f)
		if err := c.EnrollUser(context.Background(), "jdoe@example.com", "jdoe@example.com", 86400); err != nil {
			t.Fatal(err)
		}
		r := f.requests()[0]
		if r.Method != "POST" || r.Path != "/admin/v1/users/enroll" || r.Params.Get("username") != "jdoe@example.com" ||
			r.Params.Get("email") != "jdoe@example.com" || r.Params.Get("valid_secs") != "86400" || !r.SigOK {
			t.Errorf("sent %+v", r)
		}
		if err := c.EnrollUser(context.Background(), "jdoe", "", 0); err == nil {
			t.Error("enroll without email did not fail")
		}
	})
	t.Run("unknown outcome is never re-sent", func(t *testing.T) {
		for name, answer := range map[string]func(w http.ResponseWriter){
			"dropped": drop,
			"proxy 502": func(w http.ResponseWriter) {
				w.WriteHeader(502)
				fmt.Fprint(w, "<html>Bad Gateway</html>")
			},
			"unreadable 200": func(w http.ResponseWriter) { fmt.Fprint(w, `{"stat":"OK","resp`) },
		} {
			t.Run(name, func(t *testing.T) {
				f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { answer(w) })
				c, _ := newClient(t, f)
				err := c.EnrollUser(context.Background(), "jdoe@example.com", "jdoe@example.com", 0)
				if !errors.Is(err, duo.ErrOutcomeUnknown) {
					t.Fatalf("error %v does not wrap ErrOutcomeUnknown", err)
				}
				if n := f.count("POST", "/admin/v1/users/enroll"); n != 1 {
					t.Errorf("%d enroll POSTs, want exactly 1", n)
				}
			})
		}
	})
	t.Run("duo's own 503 is retried", func(t *testing.T) {
		var n atomic.Int32
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
			if n.Add(1) == 1 {
				failure(w, 503, 50301, "Service Unavailable", "")
				return
			}
			success(w, "CODE", nil)
		})
		c, _ := newClient(t, f)
		if err := c.EnrollUser(context.Background(), "jdoe@example.com", "jdoe@example.com", 0); err != nil {
			t.Fatal(err)
		}
		if n.Load() != 2 {
			t.Errorf("%d POSTs, want 2", n.Load())
		}
	})
}

// Adding a membership twice is a no-op in Duo: a lost answer is retried.
func TestAddUserToGroupRetriesLostAnswer(t *testing.T) {
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if n.Add(1) == 1 {
			drop(w)
			return
		}
		if req.Params.Get("group_id") != "DG00000000000000000A" {
			failure(w, 400, 40001, "Missing required request parameters", "group_id")
			return
		}
		success(w, "", nil)
	})
	c, _ := newClient(t, f)
	if err := c.AddUserToGroup(context.Background(), "DU000000000000000001", "DG00000000000000000A"); err != nil {
		t.Fatal(err)
	}
	if got := f.count("POST", "/admin/v1/users/DU000000000000000001/groups"); got != 2 {
		t.Errorf("%d POSTs, want 2", got)
	}
	if s := c.Stats(); s.Calls["POST /admin/v1/users/{id}/groups"] != 2 {
		t.Errorf("stats %+v", s.Calls)
	}
}

func TestCreateGroupUnknownOutcome(t *testing.T) {
	var mu sync.Mutex
	var groups []any
	var posts atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		mu.Lock()
		defer mu.Unlock()
		switch req.Method {
		case "GET":
			success(w, groups, map[string]any{"total_objects": len(groups)})
		case "POST":
			posts.Add(1)
			groups = append(groups, map[string]any{"group_id": "DG00000000000000000B", "name": req.Params.Get("name")})
			drop(w)
		}
	})
	c, _ := newClient(t, f)
	g, err := c.CreateGroup(context.Background(), "VPN Users")
	if err != nil || g.ID != "DG00000000000000000B" || g.Name != "VPN Users" {
		t.Fatalf("got %+v, %v", g, err)
	}
	if posts.Load() != 1 {
		t.Errorf("%d POSTs, want 1", posts.Load())
	}
}

func TestBulkCreateUsers(t *testing.T) {
	var store userStore
	var dropped atomic.Bool
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if req.Method == "GET" {
			var names []string
			_ = json.Unmarshal([]byte(req.Params.Get("username_list")), &names)
			var rows []any
			for _, n := range names {
				rows = append(rows, store.lookup(n)...)
			}
			success(w, rows, nil)
			return
		}
		var list []map[string]string
		if err := json.Unmarshal([]byte(req.Params.Get("users")), &list); err != nil || len(list) > 100 {
			failure(w, 400, 40002, "Invalid request parameters", "users")
			return
		}
		var out []any
		for i, u := range list {
			if !dropped.Load() && i == 10 { // half-done, then the answer is lost
				dropped.Store(true)
				drop(w)
				return
			}
			out = append(out, store.create(map[string][]string{"username": {u["username"]}, "notes": {u["notes"]}}))
		}
		success(w, out, nil)
	})
	c, _ := newClient(t, f)
	var nus []duo.NewUser
	for i := range 150 {
		nus = append(nus, duo.NewUser{Username: fmt.Sprintf("u%03d@example.com", i), Notes: "RITM"})
	}
	users, err := c.BulkCreateUsers(context.Background(), nus)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 150 || store.len() != 150 {
		t.Fatalf("%d returned, %d in Duo; want 150", len(users), store.len())
	}
	for i, u := range users {
		if u.Username != nus[i].Username {
			t.Fatalf("user %d is %s, want %s", i, u.Username, nus[i].Username)
		}
	}
	// 100 (lost after 10) + lookup + 90 missing + 50.
	if got := f.count("POST", "/admin/v1/users/bulk_create"); got != 3 {
		t.Errorf("%d bulk_create calls, want 3", got)
	}
	if _, err := c.BulkCreateUsers(context.Background(), []duo.NewUser{jdoe}); err == nil || !strings.Contains(err.Error(), "aliases") {
		t.Errorf("bulk create with aliases: %v", err)
	}
}

func TestModifyUser(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		u := fakeUser(1)
		u["notes"] = req.Params.Get("notes")
		success(w, u, nil)
	})
	c, _ := newClient(t, f)
	notes := "RITM2"
	u, err := c.ModifyUser(context.Background(), "DU000000000000000001", duo.UserUpdate{Notes: &notes, Aliases: []string{"a", "b"}})
	if err != nil || u.Notes != "RITM2" {
		t.Fatalf("got %+v, %v", u, err)
	}
	r := f.requests()[0]
	if r.Path != "/admin/v1/users/DU000000000000000001" || r.Params.Get("notes") != "RITM2" || r.Params.Get("alias2") != "b" || r.Params.Has("email") {
		t.Errorf("sent %+v", r)
	}
	if _, err := c.ModifyUser(context.Background(), "DU000000000000000001", duo.UserUpdate{}); err == nil {
		t.Error("an empty update did not fail")
	}
}

// The caller's context reaches the HTTP request: cancelling it aborts the
// request in flight (the server sees it go) and no retry follows.
func TestContextCancelsCallInFlight(t *testing.T) {
	serverSawCancel := make(chan struct{}, 1)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		select {
		case <-r.Context().Done():
			serverSawCancel <- struct{}{}
		case <-time.After(10 * time.Second):
			success(w, fakeUser(1), nil)
		}
	})
	c, _ := newClient(t, f, func(c *duo.Config) { c.Timeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(f.requests()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.GetUser(ctx, "DU1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	select {
	case <-serverSawCancel:
	case <-time.After(5 * time.Second):
		t.Error("the server never saw the request go away")
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry after cancel)", n)
	}
}

func TestContextCancelsBackoffAndWrites(t *testing.T) {
	arrived := make(chan struct{}, 1)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if req.Method == "POST" {
			arrived <- struct{}{} // the write is in flight when the caller gives up
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		failure(w, 503, 50301, "Service Unavailable", "")
	})
	c, _ := newClient(t, f, func(c *duo.Config) { c.RetryBase = time.Hour; c.RetryMax = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.GetUser(ctx, "DU1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("during backoff: error %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { <-arrived; cancel2() }()
	err := c.EnrollUser(ctx2, "jdoe@example.com", "jdoe@example.com", 0)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, duo.ErrOutcomeUnknown) {
		t.Errorf("write in flight: error %v, want Canceled and ErrOutcomeUnknown", err)
	}
	if n := f.count("POST", "/admin/v1/users/enroll"); n != 1 {
		t.Errorf("%d enroll POSTs, want 1", n)
	}
}

func TestReadTimeoutRetried(t *testing.T) {
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if n.Add(1) == 1 {
			select { // held beyond the client's timeout, until it hangs up
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		success(w, fakeUser(1), nil)
	})
	c, _ := newClient(t, f, func(c *duo.Config) { c.Timeout = time.Second })
	if _, err := c.GetUser(context.Background(), "DU1"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Errorf("%d attempts, want 2", n.Load())
	}
}
