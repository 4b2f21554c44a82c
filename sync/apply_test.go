package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
)

// run plans the requests against the fake and applies the plan.
func run(t *testing.T, f *fakeDuo, j *fakeJournal, reqs []source.Request, m Mapping, p Policy, opts ApplyOptions) (Plan, Result) {
	t.Helper()
	want := mustBuild(t, reqs, nil, m, Filter{})
	hist, err := j.Enrollments(context.Background(), Usernames(want))
	if err != nil {
		t.Fatal(err)
	}
	plan := Diff(f.have(want), want, hist, p, time.Now())
	if opts.RunID == "" {
		opts.RunID = "run-test"
	}
	return plan, Apply(context.Background(), plan, f, j, opts)
}

func outcomes(res Result) map[string]string {
	m := map[string]string{}
	for _, r := range res.Requests {
		m[r.Request] = r.Outcome
	}
	return m
}

func TestApplyScenarioConvergesAndChainsInOrder(t *testing.T) {
	have, _, _ := scenario(t)
	f := newFakeDuo(have.Users, have.Groups)
	j := &fakeJournal{}
	var reqs []source.Request
	for i, name := range []string{"jane.doe", "bob.roe", "carl.poe", "dina.low", "kim.ash", "lou.bay"} {
		reqs = append(reqs, person(fmt.Sprintf("RITM%07d", i+1), name, name+"@example.com", "VPN Users"),
			person(fmt.Sprintf("RITM%07d", i+101), name, name+"@example.com", "MFA Users"))
	}
	plan, res := run(t, f, j, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{Workers: 3})
	if res.Interrupted || res.Partial() {
		t.Fatalf("result: %+v", res.Counts)
	}
	s := plan.Summary()
	c := res.Counts
	if c.Created != s.UsersToCreate || c.Enrolled != s.Enrollments || c.MembershipsAdded != s.Memberships || c.Created != 4 || c.Blocked != 1 {
		t.Errorf("counts %+v vs summary %+v", c, s)
	}
	// Per user, the create comes before its enrollment and memberships.
	pos := map[string]int{}
	for i, l := range f.log {
		pos[l] = i
	}
	for _, l := range f.log {
		if kind, rest, _ := strings.Cut(l, " "); kind == "enroll" || kind == "add_membership" {
			user, _, _ := strings.Cut(rest, " ")
			if cp, ok := pos["create_user "+user]; ok && cp > pos[l] {
				t.Errorf("%q ran before the create of %s", l, user)
			}
		}
	}
	// Duo now holds exactly what was asked; the blocked user is untouched.
	for _, name := range []string{"jane.doe", "bob.roe", "carl.poe", "kim.ash", "lou.bay"} {
		u := f.user(name + "@example.com")
		if u == nil || len(u.Groups) != 2 {
			t.Errorf("%s: %+v", name, u)
		}
	}
	if u := f.user("dina.low@example.com"); len(u.Groups) != 0 || u.Status != "disabled" {
		t.Errorf("blocked user was touched: %+v", u)
	}
	for r, o := range outcomes(res) {
		want := OutcomeOK
		if strings.HasSuffix(r, "4") { // dina.low's requests
			want = OutcomeBlocked
		}
		if o != want {
			t.Errorf("%s: outcome %s, want %s", r, o, want)
		}
	}
	// Each request names the group it asked for, not its user's others.
	for _, r := range res.Requests {
		want := "VPN Users"
		if r.Request >= "RITM0000100" {
			want = "MFA Users"
		}
		if slices.Contains(r.Actions, string(AddMembership)) && !slices.Equal(r.Groups, []string{want}) {
			t.Errorf("%s groups = %v, want [%s]", r.Request, r.Groups, want)
		}
	}
	// The journal has intent and result for every call.
	if len(j.actions) != len(plan.Actions) {
		t.Errorf("journal has %d actions, plan %d", len(j.actions), len(plan.Actions))
	}
	for _, r := range j.actions {
		if r.result != OutcomeOK || r.run != "run-test" || len(r.action.Requests) == 0 {
			t.Errorf("journal row %+v", r)
		}
	}
	// A second run writes nothing: enrollment history and Duo agree.
	writes := f.writes()
	plan2, res2 := run(t, f, j, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{Workers: 3})
	if plan2.HasChanges() || f.writes() != writes || res2.Partial() {
		t.Errorf("second run: %s, %d more writes", SummaryLine(plan2), f.writes()-writes)
	}
}

func TestApplyRespectsThePoolWidth(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			f := newFakeDuo(nil, []duo.Group{vpn})
			f.delay = 2 * time.Millisecond
			var reqs []source.Request
			for i := range 24 {
				n := fmt.Sprintf("user.%02d", i)
				reqs = append(reqs, person(fmt.Sprintf("R%02d", i), n, n+"@example.com", "VPN Users"))
			}
			_, res := run(t, f, &fakeJournal{}, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{Workers: workers})
			if res.Counts.Created != 24 || res.Partial() {
				t.Fatalf("counts %+v", res.Counts)
			}
			if f.peak > workers {
				t.Errorf("peak concurrency %d > %d workers", f.peak, workers)
			}
			if workers > 1 && f.peak < 2 {
				t.Errorf("peak concurrency %d: the pool did not run in parallel", f.peak)
			}
		})
	}
}

func TestApplyBulkCreatesUsersWithoutAliases(t *testing.T) {
	m := DefaultMapping()
	m.Alias1, m.Alias2 = "", ""
	f := newFakeDuo(nil, []duo.Group{vpn})
	var reqs []source.Request
	for i := range 250 {
		n := fmt.Sprintf("user.%03d", i)
		reqs = append(reqs, person(fmt.Sprintf("R%03d", i), n, n+"@example.com", "VPN Users"))
	}
	_, res := run(t, f, &fakeJournal{}, reqs, m, DefaultPolicy(), ApplyOptions{Workers: 4})
	if res.Counts.Created != 250 || res.Counts.MembershipsAdded != 250 || res.Partial() {
		t.Fatalf("counts %+v", res.Counts)
	}
	if f.calls["bulk_create"] != 3 || f.calls["create_user"] != 0 {
		t.Errorf("calls = %v, want 3 bulk_create and no create_user", f.calls)
	}
	// The default mapping has aliases: one CreateUser each.
	f2 := newFakeDuo(nil, []duo.Group{vpn})
	_, res = run(t, f2, &fakeJournal{}, reqs[:5], DefaultMapping(), DefaultPolicy(), ApplyOptions{})
	if f2.calls["bulk_create"] != 0 || f2.calls["create_user"] != 5 || res.Counts.Created != 5 {
		t.Errorf("calls = %v", f2.calls)
	}
}

func TestApplyFailuresAreContainedAndExplained(t *testing.T) {
	f := newFakeDuo([]duo.User{with(duoUser("DU5", "nogroup", "nogroup@example.com"), func(u *duo.User) {})}, []duo.Group{vpn})
	j := &fakeJournal{}
	reqs := []source.Request{
		person("R1", "fail", "fail@example.com", "VPN Users"),
		person("R2", "ratelimit", "ratelimit@example.com", "VPN Users"),
		person("R3", "unknown", "unknown@example.com", "VPN Users"),
		person("R4", "nogroup", "nogroup@example.com", "VPN Users"),
		person("R5", "fine", "fine@example.com", "VPN Users"),
	}
	_, res := run(t, f, j, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{Workers: 2})
	got := outcomes(res)
	want := map[string]string{"R1": OutcomeFailed, "R2": OutcomeFailed, "R3": OutcomeFailed, "R4": OutcomeFailed, "R5": OutcomeOK}
	if !slices.Equal(sortedPairs(got), sortedPairs(want)) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	byUser := map[string][]ActionResult{}
	for _, a := range res.Actions {
		byUser[a.Action.Username] = append(byUser[a.Action.Username], a)
	}
	// A failed create skips the user's other actions, with the reason.
	fail := byUser["fail@example.com"]
	if fail[0].Outcome != OutcomeFailed || fail[0].HTTPStatus != 400 || fail[0].DuoCode != 40002 {
		t.Errorf("failed create: %+v", fail[0])
	}
	for _, a := range fail[1:] {
		if a.Outcome != OutcomeSkipped || !strings.Contains(a.Detail, "creating fail@example.com failed") {
			t.Errorf("dependent of a failed create: %+v", a)
		}
	}
	if rl := byUser["ratelimit@example.com"][0]; rl.HTTPStatus != 429 || rl.DuoCode != 42901 || rl.DuoMessage != "Too Many Requests" {
		t.Errorf("429: %+v", rl)
	}
	// An enrollment of unknown outcome counts as sent, and is not re-sent.
	unk := byUser["unknown@example.com"]
	if unk[1].Action.Kind != Enroll || unk[1].Outcome != OutcomeUnknown || !strings.Contains(unk[1].Detail, "counts as sent") {
		t.Errorf("unknown enroll: %+v", unk[1])
	}
	if unk[2].Outcome != OutcomeOK {
		t.Errorf("membership after an unknown enroll: %+v", unk[2])
	}
	if res.Counts.EnrollUnknown != 1 || res.Counts.Failed != 4 || res.Counts.Skipped != 4 || res.Counts.FailedRequests != 4 {
		t.Errorf("counts = %+v", res.Counts)
	}
	for _, r := range res.Requests {
		if r.Outcome == OutcomeFailed && r.Detail == "" {
			t.Errorf("%s failed without a detail", r.Request)
		}
	}
	var journaled string
	for _, r := range j.actions {
		if r.action.Kind == "enroll" && r.action.Username == "unknown@example.com" {
			journaled = r.result
		}
	}
	if journaled != OutcomeUnknown {
		t.Errorf("journal result of the unknown enroll = %q", journaled)
	}
	enrolls := f.calls["enroll"]
	plan2, _ := run(t, f, j, reqs[2:3], DefaultMapping(), DefaultPolicy(), ApplyOptions{})
	if plan2.HasChanges() || len(plan2.Pending) != 1 || f.calls["enroll"] != enrolls {
		t.Errorf("the unknown enrollment was planned again: %s, pending %+v", SummaryLine(plan2), plan2.Pending)
	}
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func TestApplyMakesNoCallWithoutAJournalIntent(t *testing.T) {
	f := newFakeDuo(nil, []duo.Group{vpn})
	j := &fakeJournal{failOn: "enroll"}
	_, res := run(t, f, j, []source.Request{person("R1", "a.b", "a.b@example.com", "VPN Users")}, DefaultMapping(), DefaultPolicy(), ApplyOptions{})
	if f.calls["enroll"] != 0 {
		t.Errorf("enroll was called without its intent in the journal")
	}
	for _, a := range res.Actions {
		if a.Action.Kind == Enroll && (a.Outcome != OutcomeFailed || !strings.Contains(a.Detail, "journal")) {
			t.Errorf("enroll result: %+v", a)
		}
	}
	if res.Counts.Created != 1 || res.Counts.MembershipsAdded != 1 {
		t.Errorf("counts = %+v", res.Counts)
	}
}

func TestApplyCreatesMissingGroupsFirst(t *testing.T) {
	f := newFakeDuo(nil, nil)
	p := DefaultPolicy()
	p.CreateMissingGroups = true
	reqs := []source.Request{person("R1", "a.b", "a.b@example.com", "New Team"), person("R2", "c.d", "c.d@example.com", "New Team")}
	_, res := run(t, f, &fakeJournal{}, reqs, DefaultMapping(), p, ApplyOptions{Workers: 4})
	if res.Partial() || res.Counts.GroupsCreated != 1 || res.Counts.MembershipsAdded != 2 {
		t.Fatalf("counts = %+v", res.Counts)
	}
	if f.log[0] != "create_group New Team" {
		t.Errorf("first write = %q", f.log[0])
	}
	for _, n := range []string{"a.b@example.com", "c.d@example.com"} {
		if u := f.user(n); len(u.Groups) != 1 || u.Groups[0].Name != "New Team" {
			t.Errorf("%s groups = %+v", n, u.Groups)
		}
	}
}

// interruptSetup returns a plan of n new users (3 actions each) against a
// fake whose writes wait on a gate.
func interruptSetup(t *testing.T, n int) (*fakeDuo, *fakeJournal, Plan, Desired) {
	f := newFakeDuo(nil, []duo.Group{vpn})
	var reqs []source.Request
	for i := range n {
		u := fmt.Sprintf("user.%02d", i)
		reqs = append(reqs, person(fmt.Sprintf("R%02d", i), u, u+"@example.com", "VPN Users"))
	}
	want := mustBuild(t, reqs, nil, DefaultMapping(), Filter{})
	f.gate = make(chan struct{})
	f.started = make(chan string, 100)
	return f, &fakeJournal{}, Diff(f.have(want), want, nil, DefaultPolicy(), time.Now()), want
}

func TestApplyInterruptedLetsInFlightCallsFinish(t *testing.T) {
	f, j, plan, want := interruptSetup(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- Apply(ctx, plan, f, j, ApplyOptions{Workers: 2, DrainTimeout: time.Minute}) }()
	<-f.started
	<-f.started // both workers are in a call
	cancel()
	time.Sleep(10 * time.Millisecond) // let the dispatcher see the cancel
	close(f.gate)                     // the in-flight calls now answer
	res := <-done
	if !res.Interrupted {
		t.Error("not marked interrupted")
	}
	if res.Counts.Created != 2 || f.calls["create_user"] != 2 {
		t.Errorf("created %d (calls %v), want exactly the 2 in flight", res.Counts.Created, f.calls)
	}
	if f.writes() != 2 {
		t.Errorf("%d writes after the interrupt began, want none", f.writes()-2)
	}
	if res.Counts.NotStarted != len(plan.Actions)-2 {
		t.Errorf("not started = %d, want %d", res.Counts.NotStarted, len(plan.Actions)-2)
	}
	for _, r := range j.actions {
		if r.result != OutcomeOK {
			t.Errorf("journal row without a result: %+v", r)
		}
	}
	var ns int
	for _, r := range res.Requests {
		if r.Outcome == OutcomeNotStarted {
			ns++
		}
	}
	if ns != 10 { // the two created users still lack enrollment and membership
		t.Errorf("%d requests not started, want 10", ns)
	}
	// The next run converges: every user exactly once, one email each.
	f.gate, f.started = nil, nil
	hist, _ := j.Enrollments(context.Background(), Usernames(want))
	res = Apply(context.Background(), Diff(f.have(want), want, hist, DefaultPolicy(), time.Now()), f, j, ApplyOptions{Workers: 2})
	if res.Partial() || res.Interrupted || len(f.users) != 10 || len(f.enrolls) != 10 {
		t.Fatalf("re-run: %+v; %d users, %d enrollment emails", res.Counts, len(f.users), len(f.enrolls))
	}
	for _, u := range f.users {
		if len(u.Groups) != 1 {
			t.Errorf("%s groups %+v", u.Username, u.Groups)
		}
	}
	hist, _ = j.Enrollments(context.Background(), Usernames(want))
	if p := Diff(f.have(want), want, hist, DefaultPolicy(), time.Now()); p.HasChanges() {
		t.Errorf("third plan: %s", SummaryLine(p))
	}
}

func TestApplyDrainTimeoutBoundsInFlightCalls(t *testing.T) {
	f, j, plan, _ := interruptSetup(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- Apply(ctx, plan, f, j, ApplyOptions{Workers: 2, DrainTimeout: 20 * time.Millisecond}) }()
	<-f.started
	<-f.started
	cancel() // the gate never opens: only the drain bound ends the calls
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not return after the drain timeout")
	}
	if !res.Interrupted || res.Counts.Failed != 2 || res.Counts.Skipped != 0 || res.Counts.NotStarted != len(plan.Actions)-2 {
		t.Errorf("counts = %+v", res.Counts)
	}
	for _, r := range j.actions {
		if r.result == "" {
			t.Errorf("journal row left open: %+v", r)
		}
	}
}

func TestApplyReportsProgressAndLogsEveryAction(t *testing.T) {
	var logs bytes.Buffer
	var mu gosync.Mutex
	var seen []int
	total := 0
	f := newFakeDuo(nil, []duo.Group{vpn})
	reqs := []source.Request{person("R1", "a.b", "a.b@example.com", "VPN Users"), person("R2", "fail", "fail@example.com", "VPN Users")}
	plan, _ := run(t, f, &fakeJournal{}, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{
		RunID:  "run-42",
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		OnProgress: func(done, tot int) {
			mu.Lock()
			defer mu.Unlock()
			seen, total = append(seen, done), tot
		},
	})
	if total != len(plan.Actions) || len(seen) != len(plan.Actions) || seen[len(seen)-1] != total {
		t.Errorf("progress %v of %d, want 1..%d", seen, total, len(plan.Actions))
	}
	for i, d := range seen {
		if d != i+1 {
			t.Errorf("progress not monotonic: %v", seen)
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != len(plan.Actions) {
		t.Fatalf("%d log lines for %d actions:\n%s", len(lines), len(plan.Actions), logs.String())
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"run_id", "action", "username", "group", "result", "attempt"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line lacks %s: %s", k, l)
			}
		}
		if rec["run_id"] != "run-42" {
			t.Errorf("run_id = %v", rec["run_id"])
		}
	}
	if !strings.Contains(logs.String(), `"result":"failed"`) || !strings.Contains(logs.String(), `"result":"skipped"`) {
		t.Errorf("failures not logged:\n%s", logs.String())
	}
}

func TestApplyFailedGroupCreateSkipsItsMemberships(t *testing.T) {
	f := newFakeDuo(nil, []duo.Group{vpn})
	p := DefaultPolicy()
	p.CreateMissingGroups = true
	reqs := []source.Request{person("R1", "a.b", "a.b@example.com", "Broken Team"), person("R2", "a.b", "a.b@example.com", "VPN Users")}
	_, res := run(t, f, &fakeJournal{}, reqs, DefaultMapping(), p, ApplyOptions{})
	got := map[string]string{}
	for _, a := range res.Actions {
		got[string(a.Action.Kind)+" "+a.Action.Group] = a.Outcome
	}
	want := map[string]string{"create_group Broken Team": OutcomeFailed, "create_user ": OutcomeOK, "enroll ": OutcomeOK,
		"add_membership Broken Team": OutcomeSkipped, "add_membership VPN Users": OutcomeOK}
	if !slices.Equal(sortedPairs(got), sortedPairs(want)) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if f.calls["add_membership"] != 1 {
		t.Errorf("calls %v", f.calls)
	}
	if o := outcomes(res); o["R1"] != OutcomeFailed || o["R2"] != OutcomeOK {
		t.Errorf("request outcomes %v", o)
	}
}

func TestApplyJournalsAnAliasMatchedUserUnderItsRequestedName(t *testing.T) {
	u := with(duoUser("DU1", "jane.doe", "jane.doe@example.com"), func(u *duo.User) {
		u.Username, u.IsEnrolled = "jdoe", false
		u.Aliases = []string{"jane.doe@example.com", "jane.doe", `GLOBAL\jane.doe`}
	})
	f := newFakeDuo([]duo.User{u}, []duo.Group{vpn})
	j := &fakeJournal{}
	reqs := []source.Request{person("R1", "jane.doe", "jane.doe@example.com", "VPN Users")}
	_, res := run(t, f, j, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{})
	if res.Counts.Enrolled != 1 || res.Counts.MembershipsAdded != 1 || f.enrolls[0] != "jdoe→jane.doe@example.com" {
		t.Fatalf("counts %+v enrolls %v", res.Counts, f.enrolls)
	}
	plan, _ := run(t, f, j, reqs, DefaultMapping(), DefaultPolicy(), ApplyOptions{})
	if plan.HasChanges() || len(plan.Pending) != 1 {
		t.Errorf("the enrollment is planned again: %s", SummaryLine(plan))
	}
}

func TestApplyNeverPanicsOnAHandMadePlan(t *testing.T) {
	f := newFakeDuo(nil, nil)
	plan := Plan{Actions: []Action{
		{Kind: CreateUser, Username: "a@x.io"},                // no fields
		{Kind: Enroll, Username: "a@x.io", Email: "a@x.io"},   // depends on it
		{Kind: AddMembership, Username: "b@x.io", Group: "G"}, // no ids
		{Kind: ActionKind("delete_user"), Username: "c@x.io"}, // unknown
	}}
	res := Apply(context.Background(), plan, f, nil, ApplyOptions{})
	if f.writes() != 0 {
		t.Errorf("%d writes for an invalid plan", f.writes())
	}
	want := []string{OutcomeFailed, OutcomeSkipped, OutcomeSkipped, OutcomeFailed}
	for i, r := range res.Actions {
		if r.Outcome != want[i] || r.Detail == "" {
			t.Errorf("action %d: %s %q, want %s", i, r.Outcome, r.Detail, want[i])
		}
	}
}

// TestApplyConvergesAfterAnInterruptAtEveryPoint interrupts an apply after
// each possible number of writes, then runs again: Duo always ends in the
// desired state, with no user created twice and no email sent twice.
func TestApplyConvergesAfterAnInterruptAtEveryPoint(t *testing.T) {
	var reqs []source.Request
	for i := range 4 {
		u := fmt.Sprintf("user.%d", i)
		reqs = append(reqs, person(fmt.Sprintf("R%d", i), u, u+"@example.com", "VPN Users"),
			person(fmt.Sprintf("R%d", i+10), u, u+"@example.com", "MFA Users"))
	}
	want := mustBuild(t, reqs, nil, DefaultMapping(), Filter{})
	existing := []duo.User{with(duoUser("DU9", "user.3", "user.3@example.com", vpn), func(u *duo.User) { u.IsEnrolled = false })}
	total := 0
	for k := 1; ; k++ {
		f := newFakeDuo(existing, []duo.Group{vpn, mfa})
		j := &fakeJournal{}
		ctx, cancel := context.WithCancel(context.Background())
		f.afterWrite = func(n int) {
			if n == k {
				cancel()
			}
		}
		plan := Diff(f.have(want), want, nil, DefaultPolicy(), now)
		total = len(plan.Actions)
		first := Apply(ctx, plan, f, j, ApplyOptions{Workers: 3})
		cancel()
		f.afterWrite = nil
		hist, _ := j.Enrollments(context.Background(), Usernames(want))
		second := Apply(context.Background(), Diff(f.have(want), want, hist, DefaultPolicy(), now), f, j, ApplyOptions{Workers: 3})
		if second.Partial() || second.Interrupted {
			t.Fatalf("k=%d: second run %+v", k, second.Counts)
		}
		if len(f.users) != 4 || f.calls["create_user"] != 3 {
			t.Errorf("k=%d: %d users, %d creates", k, len(f.users), f.calls["create_user"])
		}
		if len(f.enrolls) != 4 || len(slices.Compact(slices.Sorted(slices.Values(f.enrolls)))) != 4 {
			t.Errorf("k=%d: enrollment emails %v", k, f.enrolls)
		}
		for _, u := range f.users {
			if len(u.Groups) != 2 {
				t.Errorf("k=%d: %s groups %v", k, u.Username, u.Groups)
			}
		}
		if k >= total {
			if first.Interrupted && first.Counts.NotStarted > 0 {
				t.Errorf("k=%d: the last write still left actions not started", k)
			}
			break
		}
		if !first.Interrupted {
			t.Errorf("k=%d: first run not interrupted", k)
		}
	}
	if total != 3*4+2 { // 3 new users × (create, enroll, 2 groups); user.3: enroll + MFA
		t.Errorf("plan has %d actions", total)
	}
}
