package duo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/duo/duotest"
)

// scale is full without -race (or with DUO_TEST_FULL=1), small under -race.
func scale(full, small int) int {
	if raceEnabled && os.Getenv("DUO_TEST_FULL") == "" {
		return small
	}
	return full
}

func startEmulator(t testing.TB, opts duotest.Options) *duotest.Server {
	t.Helper()
	srv, err := duotest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func emulatorClient(t testing.TB, srv *duotest.Server, mods ...func(*duo.Config)) *duo.Client {
	t.Helper()
	cfg := duo.Config{Host: srv.Host(), IKey: srv.IKey(), SKey: srv.SKey(), CAFile: srv.CAFile(),
		RetryBase: 10 * time.Millisecond, RetryMax: 500 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := duo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Duo may cap pages below limit: with 100,000 users and pages of 150, the
// read returns every user once, in Duo's order, in the minimum of calls.
func TestEmulatorPageCapReadsEveryUserOnce(t *testing.T) {
	n := scale(100_000, 20_000)
	srv := startEmulator(t, duotest.Options{GenerateUsers: n, GenerateGroups: 20, GenerateSeed: 7, PageCap: 150})
	c := emulatorClient(t, srv)
	users, total, err := c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := srv.State().Users
	if total != n || len(users) != len(want) {
		t.Fatalf("total %d, %d users; want %d", total, len(users), n)
	}
	for i := range want {
		if users[i].ID != want[i].UserID {
			t.Fatalf("user %d is %s, want %s", i, users[i].ID, want[i].UserID)
		}
	}
	calls := srv.Stats().Endpoints["GET /admin/v1/users"]
	if min := int64(n+149) / 150; calls != min {
		t.Errorf("%d calls, want the minimum %d", calls, min)
	}
	if s := c.Stats(); s.TotalCalls != calls {
		t.Errorf("client counted %d calls, the emulator %d", s.TotalCalls, calls)
	}
}

// The emulator answers 429 to the first POST of a create: the retry carries
// the whole body, passes the signature check, and one user exists.
func TestEmulator429OnFirstCreate(t *testing.T) {
	srv := startEmulator(t, duotest.Options{})
	srv.Inject(duotest.Fault{Method: "POST", Path: "/admin/v1/users", Status: 429, Code: 42901})
	c := emulatorClient(t, srv)
	u, err := c.CreateUser(context.Background(), jdoe)
	if err != nil {
		t.Fatal(err)
	}
	st := srv.State()
	if len(st.Users) != 1 {
		t.Fatalf("%d users in Duo, want 1", len(st.Users))
	}
	got := st.Users[0]
	if got.UserID != u.ID || got.Username != jdoe.Username || strings.Join(got.Aliases, ",") != `jdoe,GLOBAL\jdoe` ||
		got.Notes != jdoe.Notes || got.Realname != jdoe.Realname || got.Email != jdoe.Email {
		t.Errorf("Duo holds %+v", got)
	}
	s := srv.Stats()
	if s.Endpoints["POST /admin/v1/users"] != 2 || s.RateLimited != 1 || s.AuthFailures != 0 {
		t.Errorf("emulator stats %+v", s)
	}
}

func TestEmulatorEndpoints(t *testing.T) {
	srv := startEmulator(t, duotest.Options{Seed: &duotest.Seed{
		Groups: []duotest.SeedGroup{{Name: "MFA Users"}},
		Users:  []duotest.SeedUser{{Username: "old@example.com", Aliases: []string{"old"}, Groups: []string{"MFA Users"}, IsEnrolled: true}},
	}})
	c := emulatorClient(t, srv)
	ctx := context.Background()
	g, err := c.CreateGroup(ctx, "VPN Users")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateGroup(ctx, "VPN Users"); !isCode(err, 40002) {
		t.Errorf("duplicate group: %v, want 40002", err)
	}
	groups, err := c.Groups(ctx)
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups %+v, %v", groups, err)
	}
	u, err := c.CreateUser(ctx, jdoe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUser(ctx, duo.NewUser{Username: "other@example.com", Aliases: []string{"JDOE"}}); !isCode(err, 40002) {
		t.Errorf("duplicate alias: %v, want 40002", err)
	}
	if err := c.AddUserToGroup(ctx, u.ID, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.AddUserToGroup(ctx, u.ID, g.ID); err != nil {
		t.Errorf("adding an existing membership: %v", err)
	}
	ug, err := c.UserGroups(ctx, u.ID)
	if err != nil || len(ug) != 1 || ug[0].Name != "VPN Users" {
		t.Errorf("user groups %+v, %v", ug, err)
	}
	if err := c.EnrollUser(ctx, jdoe.Username, jdoe.Email, 3600); err != nil {
		t.Fatal(err)
	}
	if err := c.EnrollUser(ctx, "nobody@example.com", "nobody@example.com", 0); !isCode(err, 40401) {
		t.Errorf("enroll unknown: %v, want 40401", err)
	}
	found, err := c.UsersByName(ctx, []string{"old", jdoe.Username, "missing@example.com"})
	if err != nil || len(found) != 2 {
		t.Fatalf("lookup %+v, %v", found, err)
	}
	users, total, err := c.UsersFor(ctx, []string{jdoe.Username})
	if err != nil || total != 2 || len(users) != 2 {
		t.Errorf("UsersFor: %d users, total %d, %v", len(users), total, err)
	}
	notes := "RITM0099"
	mu, err := c.ModifyUser(ctx, u.ID, duo.UserUpdate{Notes: &notes})
	if err != nil || mu.Notes != notes {
		t.Errorf("modify: %+v, %v", mu, err)
	}
	if _, err := c.GetUser(ctx, "DU00000000000000000X"); !isCode(err, 40401) {
		t.Errorf("get unknown: %v, want 40401", err)
	}
	bulk, err := c.BulkCreateUsers(ctx, []duo.NewUser{{Username: "b1@example.com", Notes: "RITM1"}, {Username: "b2@example.com"}})
	if err != nil || len(bulk) != 2 || bulk[0].Notes != "RITM1" {
		t.Errorf("bulk: %+v, %v", bulk, err)
	}
	st := srv.State()
	if len(st.Outbox) != 1 || st.Outbox[0].ValidSecs != 3600 || len(st.Users) != 4 {
		t.Errorf("state %+v", st)
	}
}

func isCode(err error, code int) bool {
	e, ok := errors.AsType[*duo.Error](err)
	return ok && e.Code == code
}

// desiredUser is what the convergence test wants in Duo.
type desiredUser struct {
	duo.NewUser
	group string
}

// converge is a miniature engine: read Duo, then create the missing users,
// enroll the ones never enrolled (sent holds sends, including unconfirmed
// ones, like the journal), and add the missing memberships. It returns the
// number of writes it attempted.
func converge(ctx context.Context, t *testing.T, c *duo.Client, want []desiredUser, groupIDs map[string]string, sent *sync.Map) int {
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = w.Username
	}
	have, _, err := c.UsersFor(ctx, names)
	if err != nil {
		t.Fatalf("read Duo: %v", err)
	}
	byName := map[string]duo.User{}
	for _, u := range have {
		byName[strings.ToLower(u.Username)] = u
	}
	var mu sync.Mutex
	writes := 0
	count := func() { mu.Lock(); writes++; mu.Unlock() }
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, w := range want {
		g.Go(func() error {
			u, exists := byName[strings.ToLower(w.Username)]
			if !exists {
				count()
				var err error
				if u, err = c.CreateUser(gctx, w.NewUser); err != nil {
					t.Logf("create %s: %v", w.Username, err)
					return nil // a later pass converges
				}
			}
			if _, done := sent.Load(w.Username); !done && !u.IsEnrolled {
				count()
				err := c.EnrollUser(gctx, w.Username, w.Email, 86400)
				if err == nil || errors.Is(err, duo.ErrOutcomeUnknown) {
					sent.Store(w.Username, err == nil) // false: maybe sent, never re-sent
				}
			}
			inGroup := false
			for _, ug := range u.Groups {
				inGroup = inGroup || ug.Name == w.group
			}
			if !inGroup {
				count()
				if err := c.AddUserToGroup(gctx, u.ID, groupIDs[w.group]); err != nil {
					t.Logf("add %s to %s: %v", w.Username, w.group, err)
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return writes
}

// Under a 10% fault rate and a write budget, provisioning 2,000 users
// (create, enroll, one group each) converges: no duplicate, every
// membership, at most one enrollment email per user and exactly one for
// every enrollment the client confirmed; a final run makes no writes.
func TestEmulatorConvergesUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 users")
	}
	n := scale(2000, 500)
	groupNames := []string{"MFA Users", "VPN Users", "Finance"}
	seed := &duotest.Seed{}
	for _, g := range groupNames {
		seed.Groups = append(seed.Groups, duotest.SeedGroup{Name: g})
	}
	// The write budget is about what the run needs without faults, so the
	// retries run into it near the end; the burst of 429s injected at the
	// start makes sure the shared pause is met whatever the timing.
	srv := startEmulator(t, duotest.Options{Seed: seed, FaultRate: 0.1, FaultSeed: 42,
		WritesPerMinute: 3 * n, SlowAnswer: 50 * time.Millisecond})
	srv.Inject(duotest.Fault{Method: "POST", Path: "/admin/v1/users", Status: 429, Code: 42901, Count: 20})
	c := emulatorClient(t, srv, func(cfg *duo.Config) {
		cfg.Timeout = 2 * time.Second
		cfg.Logger = slog.New(slog.DiscardHandler)
	})
	ctx := context.Background()

	groups, err := c.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groupIDs := map[string]string{}
	for _, g := range groups {
		groupIDs[g.Name] = g.ID
	}
	var want []desiredUser
	for i := range n {
		name := fmt.Sprintf("user%04d@example.com", i)
		want = append(want, desiredUser{NewUser: duo.NewUser{Username: name, Email: name,
			Aliases: []string{fmt.Sprintf("user%04d", i)}, Notes: fmt.Sprintf("RITM%07d", i)}, group: groupNames[i%3]})
	}

	var sent sync.Map
	passes := 0
	for writes := -1; writes != 0; passes++ {
		if passes == 5 {
			t.Fatalf("no convergence after %d passes", passes)
		}
		writes = converge(ctx, t, c, want, groupIDs, &sent)
		t.Logf("pass %d: %d writes", passes+1, writes)
	}
	before := srv.Stats()
	if w := converge(ctx, t, c, want, groupIDs, &sent); w != 0 || srv.Stats().Writes != before.Writes {
		t.Errorf("the final run wrote %d times", srv.Stats().Writes-before.Writes)
	}

	st := srv.State()
	if len(st.Users) != n {
		t.Errorf("%d users in Duo, want %d", len(st.Users), n)
	}
	seen := map[string]bool{}
	for _, u := range st.Users {
		if seen[u.Username] {
			t.Errorf("duplicate user %s", u.Username)
		}
		seen[u.Username] = true
		i := 0
		fmt.Sscanf(u.Username, "user%04d@", &i)
		if len(u.Groups) != 1 || u.Groups[0] != groupNames[i%3] {
			t.Errorf("%s is in %v, want [%s]", u.Username, u.Groups, groupNames[i%3])
		}
	}
	emails := map[string]int{}
	for _, e := range st.Outbox {
		emails[e.Username]++
	}
	confirmed, maybe := 0, 0
	sent.Range(func(k, v any) bool {
		name := k.(string)
		switch {
		case v.(bool) && emails[name] != 1:
			t.Errorf("%s: confirmed enrollment, %d emails", name, emails[name])
		case v.(bool):
			confirmed++
		default:
			maybe++
		}
		return true
	})
	for name, k := range emails {
		if k > 1 {
			t.Errorf("%s got %d enrollment emails", name, k)
		}
	}
	if confirmed+maybe != n {
		t.Errorf("%d users enrolled, want %d", confirmed+maybe, n)
	}
	s := srv.Stats()
	cs := c.Stats()
	t.Logf("%d passes; emulator: %d calls, %d 429s, faults %v; client: %d retries, %d unknown, %d verified; enrollments: %d confirmed, %d unknown (never re-sent)",
		passes, s.Calls, s.RateLimited, s.Faults, cs.Retries, cs.Unknown, cs.Verified, confirmed, maybe)
	if s.Faults["lost"] == 0 || s.RateLimited == 0 {
		t.Errorf("the run met no lost answers (%d) or no 429s (%d): the test proves less than it says", s.Faults["lost"], s.RateLimited)
	}
}

// Duo's answers to bad credentials reach the caller as typed errors, and
// are not retried (a wrong key does not get better).
func TestEmulatorRejectsBadCredentials(t *testing.T) {
	srv := startEmulator(t, duotest.Options{})
	for name, tc := range map[string]struct {
		mod  func(*duo.Config)
		code int
	}{
		"wrong skey":   {func(c *duo.Config) { c.SKey = "not-the-secret-key-at-all-0000000000000000" }, 40103},
		"unknown ikey": {func(c *duo.Config) { c.IKey = "DIUNKNOWNUNKNOWN0000" }, 40102},
	} {
		t.Run(name, func(t *testing.T) {
			srv.ResetStats()
			c := emulatorClient(t, srv, tc.mod)
			_, _, err := c.ListUsers(context.Background())
			e, ok := errors.AsType[*duo.Error](err)
			if !ok || e.HTTPStatus != 401 || e.Code != tc.code {
				t.Fatalf("error %v, want 401 %d", err, tc.code)
			}
			if strings.Contains(err.Error(), srv.SKey()) {
				t.Error("the error holds the secret key")
			}
			if s := srv.Stats(); s.Calls != 1 {
				t.Errorf("%d calls, want 1", s.Calls)
			}
		})
	}
}
