package duotest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/admin"
)

// apiClient is what a conformance check needs: one signed call.
type apiClient interface {
	call(method, path string, params url.Values) (int, envelope, error)
}

// libClient is the official duo_api_golang client, trusting the emulator's CA.
type libClient struct{ api *duoapi.DuoApi }

func newLibAPI(s *Server, skey string) *duoapi.DuoApi {
	api := duoapi.NewDuoApi(s.IKey(), skey, s.Host(), "duosync-test", duoapi.SetTimeout(10*time.Second))
	api.SetCustomHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}})
	return api
}

func (c libClient) call(method, path string, params url.Values) (int, envelope, error) {
	resp, body, err := c.api.SignedCall(method, path, params, duoapi.UseTimeout)
	if err != nil {
		return 0, envelope{}, err
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return resp.StatusCode, env, fmt.Errorf("answer is not JSON: %w: %s", err, body)
	}
	return resp.StatusCode, env, nil
}

// clients runs f against a fresh emulator through each independent client.
func clients(t *testing.T, opts Options, f func(t *testing.T, s *Server, c apiClient)) {
	for _, name := range []string{"duo_api_golang", "test-signer"} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, opts)
			var c apiClient = libClient{newLibAPI(s, s.SKey())}
			if name == "test-signer" {
				c = newSigner(t, s)
			}
			f(t, s, c)
		})
	}
}

func newTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// expect calls and checks the HTTP status and Duo code (0 for success).
func expect(t *testing.T, c apiClient, method, path string, params url.Values, status, code int) envelope {
	t.Helper()
	got, env, err := c.call(method, path, params)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if got != status || env.Code != code {
		t.Fatalf("%s %s: got HTTP %d code %d (%s %s), want HTTP %d code %d",
			method, path, got, env.Code, env.Message, env.Detail, status, code)
	}
	if status == 200 && env.Stat != "OK" {
		t.Fatalf("%s %s: stat %q", method, path, env.Stat)
	}
	return env
}

func decodeAs[T any](t *testing.T, env envelope) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(env.Response, &v); err != nil {
		t.Fatalf("decode response %s: %v", env.Response, err)
	}
	return v
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestConformanceUsers(t *testing.T) {
	clients(t, Options{}, func(t *testing.T, s *Server, c apiClient) {
		// Spaces and reserved characters: '+' on the wire, %20 when signed.
		env := expect(t, c, "POST", "/admin/v1/users", form("username", "Ada@Example.com", "alias1", "ada",
			"alias2", `GLOBAL\ada`, "realname", "Ada Lovelace", "email", "ada@example.com",
			"notes", "RITM0010001 ~*/+&= é"), 200, 0)
		u := decodeAs[userJSON](t, env)
		if !strings.HasPrefix(u.UserID, "DU") || len(u.UserID) != 20 {
			t.Errorf("user_id %q", u.UserID)
		}
		if u.Alias1 == nil || *u.Alias1 != "ada" || u.Alias2 == nil || *u.Alias2 != `GLOBAL\ada` || u.Alias3 != nil {
			t.Errorf("aliases %v %v %v", u.Alias1, u.Alias2, u.Alias3)
		}
		if u.Aliases["alias2"] != `GLOBAL\ada` || u.Realname != "Ada Lovelace" || u.Notes != "RITM0010001 ~*/+&= é" ||
			u.Status != "active" || u.IsEnrolled || len(u.Groups) != 0 {
			t.Errorf("user %+v", u)
		}

		// Duplicates: username case-folded, and any alias.
		expect(t, c, "POST", "/admin/v1/users", form("username", " ada@example.COM "), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users", form("username", "other", "alias1", "ADA"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users", form("username", "ada"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users", form("realname", "No Name"), 400, 40001)
		expect(t, c, "POST", "/admin/v1/users", form("username", "bad", "status", "locked out"), 400, 40002)

		// username matches username or alias; username_list too (an emulator choice).
		for _, name := range []string{"ada@example.com", "ADA", `global\ada`} {
			env = expect(t, c, "GET", "/admin/v1/users", form("username", name), 200, 0)
			if got := decodeAs[[]userJSON](t, env); len(got) != 1 || got[0].UserID != u.UserID {
				t.Errorf("username=%s: %d users", name, len(got))
			}
		}
		expect(t, c, "POST", "/admin/v1/users", form("username", "bob@example.com"), 200, 0)
		env = expect(t, c, "GET", "/admin/v1/users", form("username_list", `["ada","bob@example.com","nobody"]`), 200, 0)
		if got := decodeAs[[]userJSON](t, env); len(got) != 2 {
			t.Errorf("username_list: %d users, want 2", len(got))
		}
		env = expect(t, c, "GET", "/admin/v1/users", form("user_id_list", `["`+u.UserID+`"]`), 200, 0)
		if got := decodeAs[[]userJSON](t, env); len(got) != 1 {
			t.Errorf("user_id_list: %d users, want 1", len(got))
		}
		long, _ := json.Marshal(make([]string, 101))
		expect(t, c, "GET", "/admin/v1/users", form("username_list", string(long)), 400, 40002)
		expect(t, c, "GET", "/admin/v1/users", form("username_list", `["a"]`, "username", "a"), 400, 40002)
		env = expect(t, c, "GET", "/admin/v1/users", form("email", "ADA@example.com"), 200, 0)
		if got := decodeAs[[]userJSON](t, env); len(got) != 1 {
			t.Errorf("email filter: %d users, want 1", len(got))
		}

		// One user, modify, delete, 404s.
		expect(t, c, "GET", "/admin/v1/users/"+u.UserID, nil, 200, 0)
		expect(t, c, "GET", "/admin/v1/users/DUNOSUCHUSER0000000", nil, 404, 40401)
		env = expect(t, c, "POST", "/admin/v1/users/"+u.UserID, form("notes", "changed", "alias3", "a3"), 200, 0)
		if m := decodeAs[userJSON](t, env); m.Notes != "changed" || m.Alias3 == nil || *m.Alias3 != "a3" || *m.Alias1 != "ada" {
			t.Errorf("modified %+v", m)
		}
		expect(t, c, "POST", "/admin/v1/users/"+u.UserID, form("alias4", "bob@example.com"), 400, 40002)
		// aliases: URL-encoded pairs; unnamed positions are kept, an empty value clears one.
		env = expect(t, c, "POST", "/admin/v1/users/"+u.UserID, form("aliases", "alias2=&alias5=five"), 200, 0)
		if m := decodeAs[userJSON](t, env); m.Alias2 != nil || *m.Alias1 != "ada" || m.Aliases["alias5"] != "five" || len(m.Aliases) != 3 {
			t.Errorf("aliases after modify %+v", m.Aliases)
		}
		expect(t, c, "POST", "/admin/v1/users/"+u.UserID, form("aliases", "alias9=x"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users", form("username", "five"), 400, 40002) // alias5 is taken too
		expect(t, c, "POST", "/admin/v1/users/DUNOSUCHUSER0000000", form("notes", "x"), 404, 40401)
		expect(t, c, "DELETE", "/admin/v1/users/"+u.UserID, nil, 200, 0)
		expect(t, c, "GET", "/admin/v1/users/"+u.UserID, nil, 404, 40401)
		expect(t, c, "POST", "/admin/v1/users", form("username", "ada"), 200, 0) // the name is free again
		if n := len(s.State().Users); n != 2 {
			t.Errorf("%d users in state, want 2", n)
		}
	})
}

func TestConformancePaging(t *testing.T) {
	clients(t, Options{GenerateUsers: 350}, func(t *testing.T, s *Server, c apiClient) {
		env := expect(t, c, "GET", "/admin/v1/users", nil, 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 100 {
			t.Errorf("default limit: %d rows, want 100", len(rows))
		}
		m := env.Metadata
		if m == nil || m.TotalObjects != 350 || m.NextOffset == nil || *m.NextOffset != 100 || m.PrevOffset != nil {
			t.Fatalf("first page metadata %+v", m)
		}
		env = expect(t, c, "GET", "/admin/v1/users", form("limit", "1000"), 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 300 || *env.Metadata.NextOffset != 300 {
			t.Errorf("limit above max: %d rows, want 300", len(rows))
		}
		env = expect(t, c, "GET", "/admin/v1/users", form("limit", "300", "offset", "300"), 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 50 || env.Metadata.NextOffset != nil ||
			env.Metadata.PrevOffset == nil || *env.Metadata.PrevOffset != 0 {
			t.Errorf("last page: %d rows, metadata %+v", len(rows), env.Metadata)
		}
		env = expect(t, c, "GET", "/admin/v1/users", form("offset", "900"), 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 0 || env.Metadata.NextOffset != nil {
			t.Errorf("past the end: %d rows", len(rows))
		}
		expect(t, c, "GET", "/admin/v1/users", form("limit", "0"), 400, 40002)
		expect(t, c, "GET", "/admin/v1/users", form("offset", "-1"), 400, 40002)
		expect(t, c, "GET", "/admin/v1/users", form("limit", "ten"), 400, 40002)

		// Following next_offset yields every user once, in creation order.
		want := s.State().Users
		var got []string
		params := form("limit", "300")
		for {
			env := expect(t, c, "GET", "/admin/v1/users", params, 200, 0)
			for _, u := range decodeAs[[]userJSON](t, env) {
				got = append(got, u.UserID)
			}
			if env.Metadata.NextOffset == nil {
				break
			}
			params.Set("offset", fmt.Sprint(*env.Metadata.NextOffset))
		}
		if len(got) != len(want) {
			t.Fatalf("paged %d users, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i].UserID {
				t.Fatalf("row %d: %s, want %s", i, got[i], want[i].UserID)
			}
		}
	})
}

func TestConformancePageCap(t *testing.T) {
	clients(t, Options{GenerateUsers: 40, PageCap: 15}, func(t *testing.T, s *Server, c apiClient) {
		env := expect(t, c, "GET", "/admin/v1/users", form("limit", "300"), 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 15 || *env.Metadata.NextOffset != 15 {
			t.Errorf("page cap: %d rows, next %v", len(rows), env.Metadata.NextOffset)
		}
		env = expect(t, c, "GET", "/admin/v1/users", form("limit", "300", "offset", "30"), 200, 0)
		if rows := decodeAs[[]userJSON](t, env); len(rows) != 10 || env.Metadata.NextOffset != nil {
			t.Errorf("last capped page: %d rows", len(rows))
		}
	})
}

func TestConformanceGroupsAndEnroll(t *testing.T) {
	clients(t, Options{}, func(t *testing.T, s *Server, c apiClient) {
		env := expect(t, c, "POST", "/admin/v1/groups", form("name", "MFA Users", "desc", "everyone"), 200, 0)
		g := decodeAs[groupJSON](t, env)
		if !strings.HasPrefix(g.GroupID, "DG") || g.Status != "Active" {
			t.Errorf("group %+v", g)
		}
		expect(t, c, "POST", "/admin/v1/groups", form("name", "mfa users"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/groups", form("desc", "no name"), 400, 40001)
		expect(t, c, "GET", "/admin/v2/groups/"+g.GroupID, nil, 200, 0)
		expect(t, c, "GET", "/admin/v2/groups/DGNOSUCHGROUP000000", nil, 404, 40401)

		u := decodeAs[userJSON](t, expect(t, c, "POST", "/admin/v1/users", form("username", "ada"), 200, 0))
		path := "/admin/v1/users/" + u.UserID + "/groups"
		expect(t, c, "POST", path, form("group_id", g.GroupID), 200, 0)
		expect(t, c, "POST", path, form("group_id", g.GroupID), 200, 0) // no-op
		expect(t, c, "POST", path, nil, 400, 40001)
		expect(t, c, "POST", path, form("group_id", "DGNOSUCHGROUP000000"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users/DUNOSUCHUSER0000000/groups", form("group_id", g.GroupID), 404, 40401)
		env = expect(t, c, "GET", path, nil, 200, 0)
		if gs := decodeAs[[]groupJSON](t, env); len(gs) != 1 || gs[0].Name != "MFA Users" {
			t.Errorf("user groups %+v", gs)
		}
		env = expect(t, c, "GET", "/admin/v1/users/"+u.UserID, nil, 200, 0)
		if got := decodeAs[userJSON](t, env); len(got.Groups) != 1 || got.Groups[0].Status != "Active" {
			t.Errorf("user object groups %+v", got.Groups)
		}
		env = expect(t, c, "GET", "/admin/v2/groups/"+g.GroupID+"/users", nil, 200, 0)
		if us := decodeAs[[]groupUserJSON](t, env); len(us) != 1 || us[0].UserID != u.UserID || env.Metadata.TotalObjects != 1 {
			t.Errorf("group users %+v", us)
		}
		expect(t, c, "DELETE", path+"/"+g.GroupID, nil, 200, 0)
		expect(t, c, "DELETE", path+"/"+g.GroupID, nil, 200, 0) // not a member: still 200
		if st := s.State(); len(st.Users[0].Groups) != 0 || st.Groups[0].Members != 0 {
			t.Errorf("membership not removed: %+v", st)
		}

		// Enroll: by alias too; every call is one email in the outbox.
		expect(t, c, "POST", "/admin/v1/users/"+u.UserID, form("alias1", "ada.alias"), 200, 0)
		env = expect(t, c, "POST", "/admin/v1/users/enroll", form("username", "ada.alias", "email", "ada@example.com", "valid_secs", "86400"), 200, 0)
		if code := decodeAs[string](t, env); len(code) != 20 {
			t.Errorf("enroll answered %q", code)
		}
		expect(t, c, "POST", "/admin/v1/users/enroll", form("username", "ada", "email", "ada@example.com"), 200, 0)
		expect(t, c, "POST", "/admin/v1/users/enroll", form("username", "ada"), 400, 40001)
		expect(t, c, "POST", "/admin/v1/users/enroll", form("email", "x@example.com"), 400, 40001)
		expect(t, c, "POST", "/admin/v1/users/enroll", form("username", "ada", "email", "x@example.com", "valid_secs", "soon"), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users/enroll", form("username", "nobody", "email", "x@example.com"), 404, 40401)
		out := s.State().Outbox
		if len(out) != 2 || out[0].UserID != u.UserID || out[0].ValidSecs != 86400 || out[1].ValidSecs != 2592000 ||
			out[0].Email != "ada@example.com" {
			t.Errorf("outbox %+v", out)
		}
	})
}

func TestConformanceGroupLimit(t *testing.T) {
	seed := &Seed{Users: []SeedUser{{Username: "many"}}}
	for i := range 101 {
		seed.Groups = append(seed.Groups, SeedGroup{Name: fmt.Sprintf("g%03d", i)})
	}
	clients(t, Options{Seed: seed}, func(t *testing.T, s *Server, c apiClient) {
		st := s.State()
		path := "/admin/v1/users/" + st.Users[0].UserID + "/groups"
		for _, g := range st.Groups[:100] {
			expect(t, c, "POST", path, form("group_id", g.GroupID), 200, 0)
		}
		expect(t, c, "POST", path, form("group_id", st.Groups[0].GroupID), 200, 0) // existing: still a no-op
		expect(t, c, "POST", path, form("group_id", st.Groups[100].GroupID), 500, 50001)
		env := expect(t, c, "GET", path, form("limit", "1000"), 200, 0)
		if gs := decodeAs[[]groupJSON](t, env); len(gs) != 100 {
			t.Errorf("%d groups, want 100 (user groups limit max 500)", len(gs))
		}
		env = expect(t, c, "GET", "/admin/v1/groups", form("limit", "500"), 200, 0)
		if gs := decodeAs[[]groupJSON](t, env); len(gs) != 100 || *env.Metadata.NextOffset != 100 {
			t.Errorf("groups list: %d rows, want 100 (max 100)", len(gs))
		}
	})
}

func TestConformanceBulkCreate(t *testing.T) {
	clients(t, Options{}, func(t *testing.T, s *Server, c apiClient) {
		users := `[{"username":"a@example.com","realname":"A Person","email":"a@example.com","notes":"RITM1"},
			{"username":"b@example.com","status":"disabled"}]`
		env := expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", users), 200, 0)
		if got := decodeAs[[]userJSON](t, env); len(got) != 2 || got[1].Status != "disabled" || got[0].Notes != "RITM1" {
			t.Errorf("bulk created %+v", got)
		}
		// All or nothing: c is new, but b is a duplicate.
		expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", `[{"username":"c"},{"username":"B@example.com"}]`), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", `[{"username":"d"},{"username":"D"}]`), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", `[{"username":"e","alias1":"e1"}]`), 400, 40002)
		expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", `[{"realname":"nameless"}]`), 400, 40001)
		expect(t, c, "POST", "/admin/v1/users/bulk_create", nil, 400, 40001)
		many := make([]map[string]string, 101)
		for i := range many {
			many[i] = map[string]string{"username": fmt.Sprint("u", i)}
		}
		b, _ := json.Marshal(many)
		expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", string(b)), 400, 40002)
		if n := len(s.State().Users); n != 2 {
			t.Errorf("%d users after refused batches, want 2", n)
		}
	})
}

func TestConformanceWrongSKey(t *testing.T) {
	s := newTestServer(t, Options{})
	wrong := strings.Repeat("x", 40)
	lib := libClient{newLibAPI(s, wrong)}
	expect(t, lib, "GET", "/admin/v1/users", nil, 401, 40103)
	expect(t, lib, "POST", "/admin/v1/users", form("username", "x"), 401, 40103)
	sig := newSigner(t, s)
	sig.skey = wrong
	expect(t, sig, "GET", "/admin/v1/users", nil, 401, 40103)
	if n := len(s.State().Users); n != 0 {
		t.Errorf("a badly signed create made %d users", n)
	}
}

// TestAdminGetUsers checks the library's own paging works against the emulator
// (it returns pages in reverse order, so compare as sets).
func TestAdminGetUsers(t *testing.T) {
	s := newTestServer(t, Options{GenerateUsers: 230})
	res, err := admin.New(*newLibAPI(s, s.SKey())).GetUsers()
	if err != nil || res.Stat != "OK" {
		t.Fatalf("GetUsers: %v %+v", err, res)
	}
	seen := map[string]bool{}
	for _, u := range res.Response {
		seen[u.UserID] = true
	}
	if len(res.Response) != 230 || len(seen) != 230 {
		t.Errorf("GetUsers returned %d users (%d distinct), want 230", len(res.Response), len(seen))
	}
	if got := s.Stats().Endpoints["GET /admin/v1/users"]; got != 3 {
		t.Errorf("%d calls, want 3 at the library's limit=100", got)
	}
}

// TestLibRetryLosesBody shows the emulator catches duo_api_golang's 429
// retry that re-sends a POST with an empty body (reference §4).
func TestLibRetryLosesBody(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the library's 1 s backoff")
	}
	s := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: "/admin/v1/users", Status: 429, Code: 42901})
	lib := libClient{newLibAPI(s, s.SKey())}
	status, env, err := lib.call("POST", "/admin/v1/users", form("username", "ada"))
	if err != nil {
		t.Fatal(err)
	}
	if status != 401 || env.Code != 40103 {
		t.Errorf("empty-body retry: HTTP %d code %d, want 401 40103", status, env.Code)
	}
	if n := len(s.State().Users); n != 0 {
		t.Errorf("%d users, want 0", n)
	}
}

func TestRetryAfter429WithFullBody(t *testing.T) {
	s := newTestServer(t, Options{})
	s.Inject(Fault{Method: "POST", Path: "/admin/v1/users", Status: 429, Code: 42901})
	c := newSigner(t, s)
	params := form("username", "ada@example.com", "realname", "Ada Lovelace", "alias1", "ada")
	c.chunked = true // as duo_api_golang sends POST bodies
	expect(t, c, "POST", "/admin/v1/users", params, 429, 42901)
	expect(t, c, "POST", "/admin/v1/users", params, 200, 0)
	st := s.State()
	if len(st.Users) != 1 || st.Users[0].Realname != "Ada Lovelace" || st.Users[0].Aliases[0] != "ada" {
		t.Errorf("state %+v", st.Users)
	}
	stats := s.Stats()
	if stats.RateLimited != 1 || stats.Endpoints["POST /admin/v1/users"] != 2 || stats.Faults["injected"] != 1 {
		t.Errorf("stats %+v", stats)
	}
}

// TestSecretNeverLogged drives every kind of failure with a debug logger and
// checks the secret key is in no log line and no answer.
func TestSecretNeverLogged(t *testing.T) {
	var logs safeBuffer
	s := newTestServer(t, Options{SKey: "SECRETsecretSECRETsecretSECRETsecret1234",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), FaultRate: 0.5})
	var answers bytes.Buffer
	c := newSigner(t, s)
	record := func(c *signer) {
		_, env, _ := c.call("POST", "/admin/v1/users", form("username", "x"))
		answers.WriteString(env.Message + env.Detail + string(env.Response))
	}
	for range 10 {
		record(c)
	}
	bad := *c
	bad.skey = "SECRETsecretSECRETsecretSECRETsecret1235"
	record(&bad)
	bad = *c
	bad.date = func() string { return "Mi, 03 Dez 2026 10:00:00 +0000" }
	record(&bad)
	bad = *c
	bad.ikey = "DIXXXXXXXXXXXXXXXXXX"
	record(&bad)
	for _, out := range []string{logs.String(), answers.String()} {
		if strings.Contains(out, s.SKey()) || strings.Contains(out, "SECRETsecret") {
			t.Fatalf("secret key leaked: %s", out)
		}
	}
	if !strings.Contains(logs.String(), "duo emulator request") {
		t.Errorf("no request was logged: %q", logs.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestConformanceUnknownIKey(t *testing.T) {
	s := newTestServer(t, Options{})
	api := duoapi.NewDuoApi("DIUNKNOWNUNKNOWN0000", s.SKey(), s.Host(), "duosync-test")
	api.SetCustomHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}})
	expect(t, libClient{api}, "GET", "/admin/v1/users", nil, 401, 40102)
}

// TestLibJSONSignedCall: the library's v5 calls (JSON body for POST, query
// for GET) pass, and a JSON body may carry users as a real array.
func TestLibJSONSignedCall(t *testing.T) {
	s := newTestServer(t, Options{})
	api := newLibAPI(s, s.SKey())
	call := func(method, path string, params duoapi.JSONParams) envelope {
		t.Helper()
		resp, body, err := api.JSONSignedCall(method, path, params, duoapi.UseTimeout)
		if err != nil {
			t.Fatal(err)
		}
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil || resp.StatusCode != 200 || env.Stat != "OK" {
			t.Fatalf("%s %s: HTTP %d %s %v", method, path, resp.StatusCode, body, err)
		}
		return env
	}
	call("POST", "/admin/v1/users", duoapi.JSONParams{"username": "ada", "realname": "Ada Lovelace"})
	call("POST", "/admin/v1/users/bulk_create", duoapi.JSONParams{
		"users": []map[string]string{{"username": "bob"}, {"username": "cy", "email": "cy@example.com"}}})
	env := call("GET", "/admin/v1/users", duoapi.JSONParams{"username": "ADA"})
	if got := decodeAs[[]userJSON](t, env); len(got) != 1 || got[0].Realname != "Ada Lovelace" {
		t.Errorf("v5 GET: %+v", got)
	}
	if n := len(s.State().Users); n != 3 {
		t.Errorf("%d users, want 3", n)
	}
}
