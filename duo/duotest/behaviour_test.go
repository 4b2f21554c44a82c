package duotest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable Now for rate-limit tests, starting at the real time
// so that signed dates stay within the skew window.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimitReads(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s := newTestServer(t, Options{ReadsPerMinute: 3, WritesPerMinute: 2, Now: clock.Now})
	c := newSigner(t, s)
	for range 3 {
		expect(t, c, "GET", "/admin/v1/users", nil, 200, 0)
	}
	env := expect(t, c, "GET", "/admin/v1/users", nil, 429, 42901)
	if env.Message != "Too Many Requests" || env.Stat != "FAIL" {
		t.Errorf("429 body %+v", env)
	}
	// Writes have their own budget.
	expect(t, c, "POST", "/admin/v1/users", form("username", "a"), 200, 0)
	expect(t, c, "POST", "/admin/v1/users", form("username", "b"), 200, 0)
	expect(t, c, "POST", "/admin/v1/users", form("username", "c"), 429, 42901)
	// 3 per minute refills one read every 20 s.
	clock.Add(20 * time.Second)
	expect(t, c, "GET", "/admin/v1/users", nil, 200, 0)
	expect(t, c, "GET", "/admin/v1/users", nil, 429, 42901)

	st := s.Stats()
	if st.RateLimited != 3 || st.Reads != 6 || st.Writes != 3 || st.Status["429"] != 3 {
		t.Errorf("stats %+v", st)
	}
	if n := len(s.State().Users); n != 2 {
		t.Errorf("a rate-limited create was applied: %d users", n)
	}
}

// outcomes sends n creates and describes what each got: an HTTP status, or
// "lost"/"dropped" for a closed connection with or without the user created.
func outcomes(t *testing.T, opts Options, n int) ([]string, Stats) {
	s := newTestServer(t, opts)
	c := newSigner(t, s) // POSTs: the transport never retries them on its own
	var out []string
	for i := range n {
		name := fmt.Sprint("user", i)
		status, _, err := c.call("POST", "/admin/v1/users", form("username", name))
		switch {
		case err == nil:
			out = append(out, fmt.Sprint(status))
		case s.State().Users != nil && exists(s, name):
			out = append(out, "lost")
		default:
			out = append(out, "dropped")
		}
	}
	return out, s.Stats()
}

func exists(s *Server, name string) bool {
	for _, u := range s.State().Users {
		if u.Username == name {
			return true
		}
	}
	return false
}

func TestFaultsDeterministic(t *testing.T) {
	opts := Options{FaultRate: 0.5, FaultSeed: 7, SlowAnswer: time.Millisecond}
	a, statsA := outcomes(t, opts, 40)
	b, _ := outcomes(t, opts, 40)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	opts.FaultSeed = 8
	c, _ := outcomes(t, opts, 40)
	if strings.Join(a, " ") == strings.Join(c, " ") {
		t.Errorf("seeds 7 and 8 gave the same faults: %v", a)
	}
	count := map[string]int64{}
	for _, o := range a {
		count[o]++
	}
	f := statsA.Faults
	if count["500"] != f["500"] || count["503"] != f["503"] || count["lost"] != f["lost"] || count["dropped"] != f["drop"] {
		t.Errorf("outcomes %v do not match fault stats %v", count, f)
	}
	if count["200"] != 40-f["500"]-f["503"]-f["lost"]-f["drop"] || f["slow"] == 0 || f["lost"] == 0 || f["drop"] == 0 {
		t.Errorf("outcomes %v, faults %v: want every kind at rate 0.5 over 40 requests", count, f)
	}
}

func TestInjectLostAndDrop(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newSigner(t, s)
	s.Inject(Fault{Method: "POST", Path: "/admin/v1/users/enroll", Lost: true})
	s.Inject(Fault{Method: "POST", Path: "/admin/v1/users/*", Drop: true, Count: 2})
	expect(t, c, "POST", "/admin/v1/users", form("username", "ada"), 200, 0)
	if _, _, err := c.call("POST", "/admin/v1/users/enroll", form("username", "ada", "email", "ada@example.com")); err == nil {
		t.Fatal("lost answer: the call succeeded")
	}
	if n := len(s.State().Outbox); n != 1 {
		t.Errorf("lost answer: %d emails, want 1 (applied)", n)
	}
	for range 2 {
		if _, _, err := c.call("POST", "/admin/v1/users/bulk_create", form("users", `[{"username":"bob"}]`)); err == nil {
			t.Fatal("drop: the call succeeded")
		}
	}
	if exists(s, "bob") {
		t.Error("a dropped request was applied")
	}
	expect(t, c, "POST", "/admin/v1/users/bulk_create", form("users", `[{"username":"bob"}]`), 200, 0)
	if st := s.Stats(); st.Faults["injected"] != 3 || st.Status["dropped"] != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestInjectAppliesToAuthenticatedOnly(t *testing.T) {
	s := newTestServer(t, Options{})
	s.Inject(Fault{Status: 503})
	bad := newSigner(t, s)
	bad.skey = strings.Repeat("z", 40)
	expect(t, bad, "GET", "/admin/v1/users", nil, 401, 40103)
	c := newSigner(t, s)
	status, _, err := c.call("GET", "/admin/v1/users", nil)
	if err != nil || status != 503 {
		t.Errorf("injected 503: HTTP %d %v", status, err)
	}
	expect(t, c, "GET", "/admin/v1/users", nil, 200, 0)
}

func TestPeakConcurrency(t *testing.T) {
	s := newTestServer(t, Options{Latency: 100 * time.Millisecond})
	c := newSigner(t, s)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { c.call("GET", "/admin/v1/users", nil) })
	}
	wg.Wait()
	if p := s.Stats().PeakConcurrency; p < 2 || p > 4 {
		t.Errorf("peak concurrency %d, want 2..4", p)
	}
	s.ResetStats()
	if st := s.Stats(); st.Calls != 0 || st.PeakConcurrency != 0 || len(st.Endpoints) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func TestGenerate100k(t *testing.T) {
	gen := func(seed int64, n int) *store {
		st := newStore(defaultNormalize, seed)
		st.generate(n, 20, seed, time.Unix(1_700_000_000, 0))
		return st
	}
	n := 100_000
	if raceEnabled {
		n = 20_000 // the race detector makes map inserts ~10x slower; the 100k case is BenchmarkGenerate100k
	}
	st := gen(42, n)
	if len(st.users) != n || len(st.groups) != 20 || len(st.byName) != 2*n {
		t.Fatalf("%d users, %d groups, %d names", len(st.users), len(st.groups), len(st.byName))
	}
	u0 := st.users[7]
	if !regexp.MustCompile(`^[a-z]+\.[a-z-]+\.7@example\.com$`).MatchString(u0.username) ||
		!regexp.MustCompile(`^[a-z][a-z-]+7$`).MatchString(u0.aliases[0]) || u0.email != u0.username ||
		st.lookup(u0.aliases[0]) != u0 || st.lookup(strings.ToUpper(u0.username)) != u0 {
		t.Errorf("generated user %+v", u0)
	}
	var unenrolled, disabled, members int
	for _, u := range st.users {
		if !u.enrolled {
			unenrolled++
		}
		if u.status == "disabled" {
			disabled++
		}
		members += len(u.groups)
	}
	if unenrolled < n*12/100 || unenrolled > n*18/100 || disabled < n*2/100 || disabled > n*4/100 || members < n {
		t.Errorf("unenrolled %d, disabled %d, memberships %d", unenrolled, disabled, members)
	}
	a, b, c := gen(42, 500), gen(42, 500), gen(43, 500)
	for i := range a.users {
		if a.users[i].id != b.users[i].id || a.users[i].username != b.users[i].username ||
			len(a.users[i].groups) != len(b.users[i].groups) {
			t.Fatalf("user %d differs with the same seed", i)
		}
	}
	if a.users[0].id == c.users[0].id && a.users[0].username == c.users[0].username {
		t.Error("seeds 42 and 43 gave the same first user")
	}
	if a.users[0].id != st.users[0].id {
		t.Error("the first users depend on how many are generated")
	}
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSeed(t *testing.T) {
	p := writeFile(t, `{
  "groups": [{"name": "MFA Users"}, {"name": "VPN", "status": "bypass"}],
  "users": [
    {"username": "in.sync@example.com", "aliases": ["insync", "GLOBAL\\insync"], "email": "in.sync@example.com",
     "realname": "In Sync", "is_enrolled": true, "groups": ["MFA Users"]},
    {"username": "off@example.com", "status": "disabled"}
  ]
}`)
	seed, err := LoadSeed(p)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Options{Seed: seed, GenerateUsers: 3, GenerateGroups: 1})
	st := s.State()
	if len(st.Users) != 5 || len(st.Groups) != 3 {
		t.Fatalf("state %+v", st)
	}
	u := st.Users[0]
	if u.Aliases[1] != `GLOBAL\insync` || !u.IsEnrolled || u.Groups[0] != "MFA Users" || st.Users[1].Status != "disabled" ||
		st.Groups[1].Status != "bypass" {
		t.Errorf("seeded %+v %+v", u, st.Users[1])
	}

	bad := map[string]string{
		`{"users": [{"username": "a", "colour": "red"}]}`:                     `unknown field "colour"`,
		"{\n\"users\": [\n{\"username\": 7}]}":                                "line 3",
		"{\n\"users\": [\n{\"username\": \"a\",}]}":                           "line 3",
		`{"users": [{"username": "a", "groups": ["Nope"]}]}`:                  `users[0] (a): group "Nope" is not in the seed's groups`,
		`{"users": [{"username": "a"}, {"username": "b", "aliases": ["A"]}]}`: `users[1] (b): username or alias "A" is already used`,
		`{"users": [{"username": "a", "status": "asleep"}]}`:                  `unknown status "asleep"`,
		`{"users": [{"username": " "}]}`:                                      "users[0]: username is empty",
		`{"groups": [{"name": "g"}, {"name": "G"}]}`:                          `groups[1]: duplicate group name "G"`,
		``:      "empty file",
		`{} {}`: "more than one JSON value",
	}
	for content, want := range bad {
		p := writeFile(t, content)
		_, err := LoadSeed(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("seed %q: error %v, want it to name %s and say %q", content, err, p, want)
		}
	}
	if _, err := LoadSeed(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

func TestInspectionEndpoints(t *testing.T) {
	s := newTestServer(t, Options{GenerateUsers: 5, GenerateGroups: 2})
	c := newSigner(t, s)
	expect(t, c, "POST", "/admin/v1/users/enroll", form("username", s.State().Users[0].Username, "email", "x@example.com"), 200, 0)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}
	get := func(method, path string, v any) {
		req, _ := http.NewRequest(method, "https://"+s.Host()+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var st State
	get("GET", "/_emulator/state", &st)
	if len(st.Users) != 5 || len(st.Groups) != 2 || len(st.Outbox) != 1 || st.Outbox[0].Email != "x@example.com" {
		t.Errorf("state %+v", st)
	}
	var stats Stats
	get("GET", "/_emulator/stats", &stats)
	if stats.Calls != 1 || stats.Writes != 1 || stats.Endpoints["POST /admin/v1/users/enroll"] != 1 {
		t.Errorf("stats %+v", stats)
	}
	get("DELETE", "/_emulator/stats", &stats)
	if s.Stats().Calls != 0 {
		t.Error("DELETE /_emulator/stats did not reset")
	}

	// The CA file trusts the server; the ready line names it.
	var ready struct {
		Host   string `json:"host"`
		CAFile string `json:"ca_file"`
	}
	if err := json.Unmarshal(s.ReadyLine(), &ready); err != nil || ready.Host != s.Host() || ready.CAFile != s.CAFile() {
		t.Errorf("ready line %s: %v", s.ReadyLine(), err)
	}
	if pem, err := os.ReadFile(s.CAFile()); err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Errorf("CA file: %v", err)
	}
	s.Close()
	if _, err := os.Stat(s.CAFile()); !os.IsNotExist(err) {
		t.Errorf("CA file left behind: %v", err)
	}
}

func TestSetUserStatus(t *testing.T) {
	s := newTestServer(t, Options{Seed: &Seed{Users: []SeedUser{{Username: "ada", Aliases: []string{"a1"}}}}})
	if err := s.SetUserStatus("A1", "locked out"); err != nil {
		t.Fatal(err)
	}
	c := newSigner(t, s)
	u := decodeAs[[]userJSON](t, expect(t, c, "GET", "/admin/v1/users", form("username", "ada"), 200, 0))[0]
	if u.Status != "locked out" || u.LockoutReason == nil {
		t.Errorf("user %+v", u)
	}
	if err := s.SetUserStatus("nobody", "disabled"); err == nil {
		t.Error("unknown user: no error")
	}
	if err := s.SetUserStatus("ada", "sleepy"); err == nil {
		t.Error("unknown status: no error")
	}
	if err := s.SetUserEnrolled("ada", true); err != nil || !s.State().Users[0].IsEnrolled {
		t.Errorf("SetUserEnrolled: %v", err)
	}
}

func TestCaseSensitiveUsernames(t *testing.T) {
	s := newTestServer(t, Options{CaseSensitiveUsernames: true})
	c := newSigner(t, s)
	expect(t, c, "POST", "/admin/v1/users", form("username", "Ada"), 200, 0)
	expect(t, c, "POST", "/admin/v1/users", form("username", "ada"), 200, 0)
	expect(t, c, "POST", "/admin/v1/users", form("username", " ada "), 400, 40002)
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{{FaultRate: 2}, {FaultRate: -0.1}, {GenerateUsers: -1}, {PageCap: -1}, {Latency: -time.Second},
		{Seed: &Seed{Users: []SeedUser{{Username: ""}}}}} {
		if s, err := NewServer(o); err == nil {
			s.Close()
			t.Errorf("options %+v: no error", o)
		}
	}
}
