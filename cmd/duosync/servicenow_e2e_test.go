package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/duosync/duosync/duo/duotest"
	"github.com/duosync/duosync/report"
	"github.com/duosync/duosync/source/servicenow/sntest"
)

// snEmu is a `duosync emulate servicenow` process.
type snEmu struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
}

func startServiceNow(t *testing.T, args ...string) *snEmu {
	t.Helper()
	return startServiceNowWith(t, nil, args...)
}

// startServiceNowWith starts the emulator with extra environment variables
// (its password and OAuth secret come from SN_PASSWORD / SN_CLIENT_SECRET).
func startServiceNowWith(t *testing.T, env []string, args ...string) *snEmu {
	t.Helper()
	line, _, _ := startProcess(t, append([]string{"emulate", "servicenow"}, args...), env)
	var e snEmu
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("emulate servicenow ready line %q: %v", line, err)
	}
	return &e
}

func (e *snEmu) state(t *testing.T) sntest.State {
	t.Helper()
	var st sntest.State
	e.getJSON(t, "/_emulator/state", &st)
	return st
}

func (e *snEmu) stats(t *testing.T) sntest.Stats {
	t.Helper()
	var st sntest.Stats
	e.getJSON(t, "/_emulator/stats", &st)
	return st
}

func (e *snEmu) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(e.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestServiceNowSourceWithWriteBack runs apply --source servicenow against
// both emulators as processes: Duo ends in the desired state, each processed
// RITM gets exactly one work note, and a second run adds no note and makes
// no Duo write.
func TestServiceNowSourceWithWriteBack(t *testing.T) {
	dir := t.TempDir()
	seed := duotest.Seed{Groups: []duotest.SeedGroup{{Name: "MFA Users"}, {Name: "VPN Users"}, {Name: "Finance MFA"}, {Name: "Engineering, Platform"}}}
	data, _ := json.Marshal(seed)
	duoEmu := startDuo(t, "--seed", writeFile(t, dir, "duo-seed.json", string(data)))
	sn := startServiceNow(t, "--generate", "120", "--page-cap", "25")

	cfg := writeFile(t, dir, "duosync.yaml", fmt.Sprintf(`
source:
  catalog_items: ["Duo MFA Enrollment", "Duo Group Access"]
  servicenow:
    instance: %s
    user: %s
    query: "approval=approved^cat_item.nameINDuo MFA Enrollment,Duo Group Access"
    page_size: 40
    write_back: { work_notes: true, close_state: "3" }
mapping:
  alias2: ""
  groups_by_item: { "Duo MFA Enrollment": ["MFA Users"] }
policy:
  max_creates: 1000
`, sn.URL, sn.User))
	env := append(duoEmu.env(), "SN_PASSWORD="+sn.Password, "DUOSYNC_CONFIG="+cfg, "DUOSYNC_STATE_DIR="+filepath.Join(dir, "state"))

	r := runBin(t, env, "apply", "--yes", "--source", "servicenow")
	if r.code != 0 {
		t.Fatalf("apply --source servicenow: %v", r)
	}
	rep := lastReportIn(t, env)
	duoState := duoEmu.state(t)
	users := map[string]duotest.StateUser{}
	for _, u := range duoState.Users {
		users[u.Username] = u
	}
	notes := map[string]sntest.RequestState{}
	for _, q := range sn.state(t).Requests {
		notes[q.Number] = q
	}
	applied := 0
	for _, row := range rep.Requests {
		q := notes[row.Number]
		switch row.Outcome {
		case report.OutcomeApplied, report.OutcomeInSync:
			applied++
			u, ok := users[row.Username]
			if !ok {
				t.Errorf("%s: user %s is not in Duo", row.Number, row.Username)
			}
			for _, g := range row.Groups {
				if !strings.Contains(strings.Join(u.Groups, "\x00"), g) {
					t.Errorf("%s: %s is not in group %q (has %v)", row.Number, row.Username, g, u.Groups)
				}
			}
			if len(q.WorkNotes) != 1 || !strings.HasPrefix(q.WorkNotes[0].Value, "Duo: ") {
				t.Errorf("%s: work notes %+v, want exactly one Duo note", row.Number, q.WorkNotes)
			}
			if q.State != "3" {
				t.Errorf("%s: state %q, want the close state 3", row.Number, q.State)
			}
		case report.OutcomeSkipped:
			if len(q.WorkNotes) != 0 {
				t.Errorf("%s was skipped (%s) but got a work note", row.Number, row.Detail)
			}
		}
	}
	if applied < 60 {
		t.Fatalf("only %d requests applied of %d rows; the run is not representative:\n%v", applied, len(rep.Requests), r)
	}
	for num, q := range notes {
		if q.Approval != "approved" && len(q.WorkNotes) > 0 {
			t.Errorf("%s is %s but got a work note", num, q.Approval)
		}
	}

	// A second run adds no note and makes no Duo write.
	before := duoEmu.stats(t).Writes
	r = runBin(t, env, "apply", "--yes", "--source", "servicenow")
	if r.code != 0 {
		t.Fatalf("second apply: %v", r)
	}
	if w := duoEmu.stats(t).Writes - before; w != 0 {
		t.Errorf("second run made %d Duo writes", w)
	}
	for _, q := range sn.state(t).Requests {
		if len(q.WorkNotes) != len(notes[q.Number].WorkNotes) {
			t.Errorf("%s: the second run added a work note: %+v", q.Number, q.WorkNotes)
		}
	}
}

func lastReportIn(t *testing.T, env []string) *report.Report {
	t.Helper()
	r := runBin(t, env, "report", "--last", "--format", "json")
	if r.code != 0 {
		t.Fatalf("report --last: %v", r)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	return &rep
}

// TestServiceNowIncremental: with source.servicenow.incremental, a second
// run reads only the records updated since the first one's newest.
func TestServiceNowIncremental(t *testing.T) {
	dir := t.TempDir()
	seed := duotest.Seed{Groups: []duotest.SeedGroup{{Name: "MFA Users"}, {Name: "VPN Users"}, {Name: "Finance MFA"}, {Name: "Engineering, Platform"}}}
	data, _ := json.Marshal(seed)
	duoEmu := startDuo(t, "--seed", writeFile(t, dir, "duo-seed.json", string(data)))
	sn := startServiceNow(t, "--generate", "40")
	cfg := writeFile(t, dir, "duosync.yaml", fmt.Sprintf(`
source:
  servicenow:
    instance: %s
    user: %s
    query: "approval=approved"
    incremental: true
mapping:
  groups_by_item: { "Duo MFA Enrollment": ["MFA Users"] }
policy:
  max_creates: 1000
`, sn.URL, sn.User))
	env := append(duoEmu.env(), "SN_PASSWORD="+sn.Password, "DUOSYNC_CONFIG="+cfg, "DUOSYNC_STATE_DIR="+filepath.Join(dir, "state"))
	if r := runBin(t, env, "apply", "--yes", "--source", "servicenow"); r.code != 0 {
		t.Fatalf("first apply: %v", r)
	}
	first := len(lastReportIn(t, env).Requests)
	if r := runBin(t, env, "apply", "--yes", "--source", "servicenow"); r.code != 0 {
		t.Fatalf("second apply: %v", r)
	}
	second := len(lastReportIn(t, env).Requests)
	// The generator gives each record its own minute: only the newest one
	// (at the watermark, >=) is read again.
	if first < 20 || second != 1 {
		t.Errorf("first run read %d requests, the incremental one %d; want many, then 1", first, second)
	}
}

// TestFailedWriteBackIsRetriedNextRun: write-backs refused by ServiceNow do
// not hide the Duo work (the run succeeds and says so), and the next run
// writes them, even an incremental run that no longer reads those requests.
func TestFailedWriteBackIsRetriedNextRun(t *testing.T) {
	dir := t.TempDir()
	duoSrv, err := duotest.NewServer(duotest.Options{Seed: &duotest.Seed{Groups: []duotest.SeedGroup{{Name: "MFA Users"}, {Name: "VPN Users"}, {Name: "Finance MFA"}, {Name: "Engineering, Platform"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer duoSrv.Close()
	sn, err := sntest.NewServer(sntest.Options{Generate: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	target, _ := url.Parse(sn.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refuse atomic.Bool
	refuse.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && refuse.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	cfg := writeFile(t, dir, "duosync.yaml", fmt.Sprintf(`
source:
  servicenow:
    instance: %s
    user: %s
    query: "approval=approved"
    incremental: true
    write_back: { work_notes: true }
mapping:
  groups_by_item: { "Duo MFA Enrollment": ["MFA Users"] }
policy:
  max_creates: 1000
`, front.URL, sn.User()))
	vars := map[string]string{"DUO_HOST": duoSrv.Host(), "DUO_IKEY": duoSrv.IKey(), "DUO_SKEY": duoSrv.SKey(), "DUO_CA_FILE": duoSrv.CAFile(),
		"SN_PASSWORD": sn.Password(), "DUOSYNC_CONFIG": cfg, "DUOSYNC_STATE_DIR": filepath.Join(dir, "state"), "DUOSYNC_LOG_FORMAT": "json"}
	run := func() (int, string) {
		var out, errOut strings.Builder
		code := Run(context.Background(), []string{"apply", "--yes", "--source", "servicenow"}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return vars[k] }})
		return code, out.String() + errOut.String()
	}
	if code, out := run(); code != 0 || !strings.Contains(out, "write-back to ServiceNow") {
		t.Fatalf("first run: exit %d, want 0 with the write-back failures logged:\n%s", code, out)
	}
	notes := func() (n int) {
		for _, q := range sn.State().Requests {
			n += len(q.WorkNotes)
		}
		return n
	}
	if n := notes(); n != 0 {
		t.Fatalf("%d notes landed through a refusing proxy", n)
	}
	created := len(duoSrv.State().Users)
	if created < 10 {
		t.Fatalf("the Duo work was not done: %d users", created)
	}
	refuse.Store(false)
	if code, out := run(); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	// Every request the first run served now has its note, once.
	for _, q := range sn.State().Requests {
		if len(q.WorkNotes) > 1 {
			t.Errorf("%s: %d notes", q.Number, len(q.WorkNotes))
		}
	}
	if n := notes(); n < created {
		t.Errorf("%d notes after the retry, want one per provisioned request (%d users)", n, created)
	}
}
