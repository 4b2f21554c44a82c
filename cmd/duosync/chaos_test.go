package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/duosync/duosync/duo/duotest"
	"github.com/duosync/duosync/report"
	"github.com/duosync/duosync/source/servicenow/sntest"
)

// The chaos test of issue 8: the real binary against both emulators as
// processes, with faults on every kind of call (500, 503, dropped
// connections, slow answers, lost answers to applied writes, 429s from small
// budgets, OAuth tokens that expire during the run). It re-runs apply until
// a run succeeds, then checks that Duo holds exactly what the approved
// requests ask for, that nothing was done twice, that every failure left in
// a report says why, and that a further run makes no write.
//
// The short form runs in `make test`; DUOSYNC_CHAOS=long (make chaos) runs
// the long one, with at least 5,000 ServiceNow requests. docs/chaos.md
// describes both and shows a summary.

// chaosProfile is the size and the hostility of one chaos run.
type chaosProfile struct {
	name      string
	requests  int    // RITMs the ServiceNow emulator generates
	duoFaults string // --fault-rate of the Duo emulator
	duoRate   string // --rate-limit of the Duo emulator (reads=…,writes=…)
	duoSlow   string // --slow-answer
	snFaults  string // --fault-rate of the ServiceNow emulator
	snRate    string // --rate-limit of the ServiceNow emulator
	tokenTTL  string // --token-ttl: access tokens expire during a run
	pageSize  int    // source.servicenow.page_size
	// revokeEvery: every N-th Table API call arrives with a revoked token
	// (the emulator's --token-ttl only expires tokens, which the client
	// renews ahead of time).
	revokeEvery int
	runTimeout  time.Duration // one apply; past it the run is killed with SIGQUIT (a goroutine dump)
	rounds      int           // apply runs allowed before one must succeed
}

var (
	chaosShort = chaosProfile{name: "short", requests: 300, duoFaults: "0.06", duoRate: "reads=300/m,writes=680/m",
		duoSlow: "300ms", snFaults: "0.1", snRate: "60/2s", tokenTTL: "2s", pageSize: 20, revokeEvery: 15, rounds: 8, runTimeout: 3 * time.Minute}
	chaosLong = chaosProfile{name: "long", requests: 5000, duoFaults: "0.04", duoRate: "reads=1200/m,writes=6000/m",
		duoSlow: "500ms", snFaults: "0.08", snRate: "100/2s", tokenTTL: "3s", pageSize: 100, revokeEvery: 40, rounds: 8, runTimeout: 15 * time.Minute}
)

// chaosGroups are the Duo groups the ServiceNow generator's requests ask
// for (sntest.Generate: genGroups, and "MFA Users" by catalog item).
var chaosGroups = []string{"MFA Users", "VPN Users", "Finance MFA", "Engineering, Platform"}

const (
	chaosSNSecret = "chaosClientSecret-7f3a9c2e5b1d"
	chaosSeed     = 1 // --generate-seed of the ServiceNow emulator
)

func TestChaosBothEmulatorsWithFaults(t *testing.T) {
	p := chaosShort
	if os.Getenv("DUOSYNC_CHAOS") == "long" {
		p = chaosLong
	} else if testing.Short() {
		t.Skip("the chaos test is not run with -short")
	}
	// Other seeds and fault rates, to hunt for bugs by hand:
	// DUOSYNC_CHAOS_SEED=N, DUOSYNC_CHAOS_FAULTS=0.2 (both emulators).
	faultSeed := "8"
	if v := os.Getenv("DUOSYNC_CHAOS_SEED"); v != "" {
		faultSeed = v
	}
	if v := os.Getenv("DUOSYNC_CHAOS_FAULTS"); v != "" {
		p.duoFaults, p.snFaults = v, v
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")

	seed := duotest.Seed{}
	for _, g := range chaosGroups {
		seed.Groups = append(seed.Groups, duotest.SeedGroup{Name: g})
	}
	seedJSON, err := json.Marshal(seed)
	if err != nil {
		t.Fatal(err)
	}
	duoEmu := startDuo(t, "--seed", writeFile(t, dir, "duo-seed.json", string(seedJSON)),
		"--fault-rate", p.duoFaults, "--fault-seed", faultSeed, "--slow-answer", p.duoSlow, "--rate-limit", p.duoRate)
	sn := startServiceNowWith(t, []string{"SN_CLIENT_SECRET=" + chaosSNSecret},
		"--generate", fmt.Sprint(p.requests), "--generate-seed", fmt.Sprint(chaosSeed),
		"--fault-rate", p.snFaults, "--fault-seed", faultSeed, "--rate-limit", p.snRate,
		"--client-id", "duosync-chaos", "--token-ttl", p.tokenTTL)

	// duosync talks to ServiceNow through a proxy that revokes the OAuth
	// token of every revokeEvery-th Table API call.
	revoker := startTokenRevoker(t, sn.URL, p.revokeEvery)

	cfg := writeFile(t, dir, "duosync.yaml", fmt.Sprintf(`
source:
  catalog_items: ["Duo MFA Enrollment", "Duo Group Access"]
  servicenow:
    instance: %s
    user: %s
    client_id: duosync-chaos
    query: "approval=approved^cat_item.nameINDuo MFA Enrollment,Duo Group Access"
    page_size: %d
    write_back: { work_notes: true }
mapping:
  groups_by_item: { "Duo MFA Enrollment": ["MFA Users"] }
policy:
  max_creates: 1000000
  max_changes: 1000000
`, revoker.url, sn.User, p.pageSize))
	env := append(duoEmu.env(), "SN_PASSWORD="+sn.Password, "SN_CLIENT_SECRET="+chaosSNSecret,
		"DUOSYNC_CONFIG="+cfg, "DUOSYNC_STATE_DIR="+state)
	secrets := map[string]string{"Duo skey": duoEmu.SKey, "ServiceNow password": sn.Password, "OAuth client secret": chaosSNSecret}

	want, wantRITMs := chaosDesired(t, sn.state(t), p.requests)
	if len(want) < p.requests/2 {
		t.Fatalf("only %d of %d generated requests are to be provisioned; the run is not representative", len(want), p.requests)
	}

	sum := chaosSummary{profile: p, desired: len(want), started: time.Now(), seed: faultSeed}
	unknownSends := map[string]bool{} // users whose enrollment email may or may not have gone out
	lastRunID := ""
	for round := 1; ; round++ {
		if round > p.rounds {
			t.Fatalf("no apply succeeded in %d rounds", p.rounds)
		}
		writesBefore, began := duoEmu.stats(t).Writes, time.Now()
		r := chaosApply(t, env, p.runTimeout)
		took := time.Since(began).Round(100 * time.Millisecond)
		writes := duoEmu.stats(t).Writes - writesBefore
		chaosNoSecrets(t, fmt.Sprintf("round %d output", round), r.stdout+r.stderr, secrets)
		rep := lastReportIn(t, env)
		if rep.RunID == lastRunID {
			t.Fatalf("round %d left no report of its own: %v", round, r)
		}
		lastRunID = rep.RunID
		sum.add(round, r.code, writes, rep)
		t.Logf("round %d (%s): exit %d, %d Duo writes, %d failures, %d api calls, %d retries, %d 429s",
			round, took, r.code, writes, len(rep.Failures), rep.Summary.APICalls, rep.Summary.Retries, rep.Summary.RateLimited)

		switch r.code {
		case 0:
		case exitPartial:
			if len(rep.Failures) == 0 {
				t.Errorf("round %d: exit 3 but the report lists no failure", round)
			}
		case exitError:
			// A read failed: nothing may have been written.
			if writes != 0 {
				t.Errorf("round %d: exit 1 (a read failed) after %d Duo writes:\n%v", round, writes, r)
			}
			if rep.Error == "" {
				t.Errorf("round %d: exit 1 but the report gives no error", round)
			}
		default:
			t.Fatalf("round %d: unexpected exit code: %v", round, r)
		}
		byAction := map[string]int64{}
		for _, f := range rep.Failures {
			byAction[f.Action]++
		}
		if len(byAction) > 0 {
			t.Logf("  failures by action: %s", kv(byAction))
		}
		for i, f := range rep.Failures {
			if i < 5 {
				t.Logf("  failure: %s %s %s (%d attempts, HTTP %d, Duo %d): %s", f.Action, f.Username, f.Group, f.Attempts, f.HTTPStatus, f.DuoCode, f.Error)
			}
		}
		for user := range chaosCheckFailures(t, round, rep) {
			unknownSends[user] = true
		}
		if r.code == 0 {
			sum.rounds = round
			break
		}
	}

	// A further run, faults still on, finds nothing to do.
	writesBefore := duoEmu.stats(t).Writes
	r := chaosApply(t, env, p.runTimeout)
	if extra := duoEmu.stats(t).Writes - writesBefore; r.code != 0 || extra != 0 {
		t.Errorf("the follow-up run: want exit 0 and no Duo write, got %d writes: %v", extra, r)
	}
	chaosNoSecrets(t, "follow-up output", r.stdout+r.stderr, secrets)

	duoState := duoEmu.state(t)
	chaosCompare(t, want, duoState)
	journalUnknown := chaosUnconfirmedEnrollments(t, filepath.Join(state, "journal.db"))
	sum.emails, sum.unknownSends = chaosCheckOutbox(t, want, duoState, journalUnknown, unknownSends)
	sum.noted, sum.notesUnknown = chaosCheckWorkNotes(t, sn.state(t), wantRITMs, chaosWriteBacks(t, filepath.Join(state, "journal.db")))

	sum.duo, sum.sn, sum.revoked = duoEmu.stats(t), sn.stats(t), revoker.revoked.Load()
	text := sum.String()
	t.Log("\n" + text)
	if p.name == "long" {
		fmt.Println(text)
	}
	if sum.duo.Calls+sum.sn.Requests < int64(p.requests) {
		t.Errorf("only %d emulator requests for %d RITMs", sum.duo.Calls+sum.sn.Requests, p.requests)
	}
	if total(sum.duo.Faults) == 0 || sum.sn.Faults == 0 {
		t.Errorf("no fault was injected (Duo %v, ServiceNow %d): the test proves nothing", sum.duo.Faults, sum.sn.Faults)
	}
}

// chaosApply runs `duosync apply --yes --source servicenow` like runBin,
// but bounded: a run that hangs is stopped with SIGQUIT, so that its
// goroutine dump lands in the failure message instead of the test timing
// out without a word.
func chaosApply(t *testing.T, env []string, timeout time.Duration) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "apply", "--yes", "--source", "servicenow")
	cmd.Env = append(cleanEnv(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("apply did not finish within %s; its stderr:\n%s", timeout, r.stderr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run duosync apply: %v", err)
	}
	return r
}

// tokenRevoker is a reverse proxy in front of the ServiceNow emulator
// process: every n-th Table API call with a bearer token reaches the
// emulator with a token it never issued, as if an administrator had revoked
// it, so the emulator answers 401 and duosync must renew its token. A
// connection the emulator drops is dropped here too, not turned into a 502.
type tokenRevoker struct {
	url     string
	revoked atomic.Int64
	calls   atomic.Int64
}

func startTokenRevoker(t *testing.T, target string, n int) *tokenRevoker {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rv := &tokenRevoker{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			if !strings.HasPrefix(r.In.URL.Path, "/api/now/") || !strings.HasPrefix(r.In.Header.Get("Authorization"), "Bearer ") {
				return
			}
			if n > 0 && rv.calls.Add(1)%int64(n) == 0 {
				rv.revoked.Add(1)
				r.Out.Header.Set("Authorization", "Bearer revoked-by-the-chaos-proxy")
			}
		},
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	rv.url = "http://" + ln.Addr().String()
	return rv
}

// chaosDesired computes, independently of duosync, the Duo users the
// instance's requests ask for: approved, not closed incomplete (4) or
// skipped (7), requester active. The emulator's state has no requester
// fields, so whether a requester is active comes from the generator run
// in-process with the emulator's seed; the state must agree with it.
func chaosDesired(t *testing.T, st sntest.State, n int) (users map[string][]string, ritms map[string]bool) {
	t.Helper()
	gen := sntest.Generate(n, chaosSeed)
	active := map[string]bool{}
	for _, u := range gen.Users {
		active[u.UserName] = u.Active != "false"
	}
	if len(st.Requests) != len(gen.Requests) {
		t.Fatalf("the ServiceNow emulator holds %d requests, the generator made %d", len(st.Requests), len(gen.Requests))
	}
	want, ritms := map[string][]string{}, map[string]bool{}
	for i, q := range st.Requests {
		if g := gen.Requests[i]; g.Number != q.Number || g.RequestedFor != q.RequestedFor {
			t.Fatalf("request %d: emulator has %s for %s, the generator %s for %s", i, q.Number, q.RequestedFor, g.Number, g.RequestedFor)
		}
		if q.Approval != "approved" || q.State == "4" || q.State == "7" || !active[q.RequestedFor] {
			continue
		}
		var group string
		switch q.CatItem {
		case "Duo MFA Enrollment":
			group = "MFA Users"
		case "Duo Group Access":
			group = q.Variables["duo_group"]
		default:
			continue
		}
		ritms[q.Number] = true
		user := strings.ToLower(q.RequestedFor + "@example.com") // mapping.username: {requested_for.email}
		if !slices.Contains(want[user], group) {
			want[user] = append(want[user], group)
		}
	}
	for _, g := range want {
		sort.Strings(g)
	}
	return want, ritms
}

// chaosCheckFailures checks that each failure left in a report says what
// failed and why, and that no user was created twice (Duo refuses a second
// create of a username with 40002). It returns the users whose enrollment
// call had an unknown outcome (maybe sent).
func chaosCheckFailures(t *testing.T, round int, rep *report.Report) map[string]bool {
	t.Helper()
	unknown := map[string]bool{}
	failedRows := map[string]bool{}
	for _, q := range rep.Requests {
		if q.Outcome == report.OutcomeFailed || q.Outcome == report.OutcomePartial {
			failedRows[q.Number] = true
			if q.Detail == "" {
				t.Errorf("round %d: request %s (%s) %s without a detail", round, q.Number, q.Username, q.Outcome)
			}
		}
	}
	for _, f := range rep.Failures {
		where := fmt.Sprintf("round %d: failure %s %s %s", round, f.Action, f.Username, f.Group)
		switch {
		case f.Error == "":
			t.Errorf("%s: no error text", where)
		case f.HTTPStatus == 0 && f.DuoCode == 0 && !chaosTransportCause(f.Error):
			t.Errorf("%s: neither an HTTP status, a Duo code nor a transport cause: %q", where, f.Error)
		}
		if f.Action == "create_user" && f.DuoCode == 40002 {
			t.Errorf("%s: Duo refused a second creation (40002): a user was created twice: %s", where, f.Error)
		}
		if len(f.Requests) == 0 {
			t.Errorf("%s: names no request", where)
		}
		for _, num := range f.Requests {
			if !failedRows[num] {
				t.Errorf("%s: its request %s is not reported as failed", where, num)
			}
		}
		if f.Action == "enroll" && strings.Contains(f.Error, "outcome unknown") {
			unknown[strings.ToLower(f.Username)] = true
		}
	}
	return unknown
}

// chaosTransportCause reports whether an error without an HTTP answer names
// what went wrong on the wire.
func chaosTransportCause(msg string) bool {
	for _, cause := range []string{"outcome unknown", "EOF", "connection reset", "connection refused", "timeout", "deadline", "broken pipe", "closed"} {
		if strings.Contains(msg, cause) {
			return true
		}
	}
	return false
}

// chaosCompare checks that Duo holds exactly the desired users, each in
// exactly its desired groups, and no username twice.
func chaosCompare(t *testing.T, want map[string][]string, st duotest.State) {
	t.Helper()
	seen := map[string]int{}
	for _, u := range st.Users {
		name := strings.ToLower(strings.TrimSpace(u.Username))
		seen[name]++
		groups, ok := want[name]
		if !ok {
			t.Errorf("Duo holds %s, which no approved request asks for", u.Username)
			continue
		}
		got := slices.Clone(u.Groups)
		sort.Strings(got)
		if !slices.Equal(got, groups) {
			t.Errorf("%s: groups %q, want %q", u.Username, got, groups)
		}
	}
	missing := 0
	for name := range want {
		switch seen[name] {
		case 0:
			missing++
			if missing <= 10 {
				t.Errorf("Duo lacks %s", name)
			}
		case 1:
		default:
			t.Errorf("Duo holds %s %d times", name, seen[name])
		}
	}
	if missing > 0 {
		t.Errorf("Duo lacks %d of the %d desired users", missing, len(want))
	}
}

// chaosCheckOutbox checks that no enrollment email went out twice, and that
// every new user got one unless the journal and a report both record an
// enrollment of unknown outcome for it (the emulator drops some calls
// before applying them, which the client cannot tell from a lost answer).
func chaosCheckOutbox(t *testing.T, want map[string][]string, st duotest.State, journalUnknown, reportUnknown map[string]bool) (emails, unknown int) {
	t.Helper()
	sent := map[string]int{}
	for _, m := range st.Outbox {
		sent[strings.ToLower(m.Username)]++
	}
	for name, n := range sent {
		if n > 1 {
			t.Errorf("%d enrollment emails to %s", n, name)
		}
		emails += n
	}
	for name := range want {
		if sent[name] == 1 {
			continue
		}
		unknown++
		if !journalUnknown[name] || !reportUnknown[name] {
			t.Errorf("%s got no enrollment email, and the journal (%v) and the reports (%v) do not both record an unknown-outcome send",
				name, journalUnknown[name], reportUnknown[name])
		}
	}
	return emails, unknown
}

// chaosUnconfirmedEnrollments reads from the journal the users with an
// enrollment send that was never confirmed (unknown outcome, or started and
// never finished).
func chaosUnconfirmedEnrollments(t *testing.T, path string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT lower(trim(username)) FROM enrollments WHERE confirmed = 0`)
	if err != nil {
		t.Fatalf("query journal enrollments: %v", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("journal enrollments: %v", err)
		}
		out[name] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("journal enrollments: %v", err)
	}
	return out
}

// chaosCheckWorkNotes checks that write-back never wrote the same note
// twice on one RITM, however often its PATCH was retried or re-run, and
// that every provisioned RITM got its "done" note unless the journal
// records why not (a write-back of unknown outcome, assumed written so as
// never to double a note). It returns the RITMs noted and those whose note
// is missing for that reason.
func chaosCheckWorkNotes(t *testing.T, st sntest.State, provisioned map[string]bool, journal map[string]string) (noted, unknown int) {
	t.Helper()
	for _, q := range st.Requests {
		seen := map[string]bool{}
		done := false
		for _, n := range q.WorkNotes {
			if seen[n.Value] {
				t.Errorf("%s: the work note %q was written twice", q.Number, n.Value)
			}
			seen[n.Value] = true
			done = done || (strings.HasPrefix(n.Value, "Duo: ") && !strings.Contains(n.Value, "could not provision"))
		}
		if !provisioned[q.Number] {
			if len(q.WorkNotes) > 0 {
				t.Errorf("%s is not to be provisioned but got work notes %+v", q.Number, q.WorkNotes)
			}
			continue
		}
		switch {
		case done:
			noted++
		case strings.Contains(journal[q.Number], "outcome unknown"):
			unknown++
		default:
			t.Errorf("%s was provisioned but has no done note, and the journal says %q", q.Number, journal[q.Number])
		}
	}
	return noted, unknown
}

// chaosWriteBacks reads the journal's last write-back error per RITM
// number ("" for a clean one).
func chaosWriteBacks(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT number, result, error FROM write_backs ORDER BY id`)
	if err != nil {
		t.Fatalf("query journal write_backs: %v", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var number, result, errText string
		if err := rows.Scan(&number, &result, &errText); err != nil {
			t.Fatalf("journal write_backs: %v", err)
		}
		out[number] = result + ": " + errText
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("journal write_backs: %v", err)
	}
	return out
}

func chaosNoSecrets(t *testing.T, where, text string, secrets map[string]string) {
	t.Helper()
	for name, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the %s", where, name)
		}
	}
}

// chaosSummary is what the chaos test prints at the end.
type chaosSummary struct {
	profile                    chaosProfile
	seed                       string
	desired, rounds            int
	exits                      []int
	writes                     []int64
	failures                   int
	apiCalls, retries, limited int
	emails, unknownSends       int
	noted, notesUnknown        int
	revoked                    int64
	duo                        duotest.Stats
	sn                         sntest.Stats
	started                    time.Time
}

func (s *chaosSummary) add(round, code int, writes int64, rep *report.Report) {
	s.exits = append(s.exits, code)
	s.writes = append(s.writes, writes)
	s.failures += len(rep.Failures)
	s.apiCalls += rep.Summary.APICalls
	s.retries += rep.Summary.Retries
	s.limited += rep.Summary.RateLimited
}

func (s *chaosSummary) String() string {
	var b strings.Builder
	p := s.profile
	fmt.Fprintf(&b, "chaos (%s): %d ServiceNow requests, %d Duo users desired\n", p.name, p.requests, s.desired)
	fmt.Fprintf(&b, "  faults (seed %s): Duo --fault-rate %s --rate-limit %s; ServiceNow --fault-rate %s --rate-limit %s --token-ttl %s\n",
		s.seed, p.duoFaults, p.duoRate, p.snFaults, p.snRate, p.tokenTTL)
	fmt.Fprintf(&b, "  rounds: %d until exit 0 (exit codes %v, Duo writes per round %v), then a follow-up run with no write\n",
		s.rounds, s.exits, s.writes)
	fmt.Fprintf(&b, "  Duo emulator: %d requests (%d reads, %d writes), faults %s, 429s %d, status %s, peak concurrency %d\n",
		s.duo.Calls, s.duo.Reads, s.duo.Writes, kv(s.duo.Faults), s.duo.RateLimited, kv(s.duo.Status), s.duo.PeakConcurrency)
	fmt.Fprintf(&b, "  ServiceNow emulator: %d requests, faults %d (500/503/drop), 429s %d, 401s %d, tokens issued %d, PATCHes applied %d\n",
		s.sn.Requests, s.sn.Faults, s.sn.RateLimited, s.sn.Unauthorized, s.sn.TokensIssued, s.sn.Patches)
	fmt.Fprintf(&b, "  OAuth tokens revoked mid-run by the proxy: %d\n", s.revoked)
	fmt.Fprintf(&b, "  duosync reports (sum over rounds): api_calls %d, retries %d, rate_limited %d, failures listed %d\n",
		s.apiCalls, s.retries, s.limited, s.failures)
	fmt.Fprintf(&b, "  enrollment emails: %d sent, none twice; %d users without one, each recorded as an unknown-outcome send\n",
		s.emails, s.unknownSends)
	fmt.Fprintf(&b, "  ServiceNow work notes: %d provisioned RITMs noted once, %d not noted (write-back outcome unknown, assumed written), none twice\n",
		s.noted, s.notesUnknown)
	fmt.Fprintf(&b, "  final Duo state equals the desired one: %d users with their groups; took %s",
		s.desired, time.Since(s.started).Round(time.Second))
	return b.String()
}

// kv prints a count map in key order.
func kv(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
