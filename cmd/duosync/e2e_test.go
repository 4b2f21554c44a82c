package main

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// wantDemoUsers is what sample.csv asks of the demo's Duo: the seven new
// users with their groups (Maria Garcia is already in sync, Tom Baker is
// disabled and blocked, Li Wei's row has an invalid email).
var wantDemoUsers = map[string][]string{
	"john.smith@example.com":     {"MFA Users"},
	"thi.nguyen@example.com":     {"VPN Users"},
	"jose.alvarez@example.com":   {"MFA Users", "VPN Users"},
	"piotr.kowalski@example.com": {"Finance Apps", "MFA Users"},
	"siobhan.obrien@example.com": {"MFA Users"},
	"dieter.muller@example.com":  {"VPN Users"},
	"aisha.williams@example.com": {"Finance Apps"},
}

func TestPlanApplyAgainstEmulatorProcess(t *testing.T) {
	dir := t.TempDir()
	emu := startDuo(t, "--seed", writeSeed(t, dir))
	// The seeded account has 3 users: 10% of it (the default max_creates)
	// would stop the 7 creations, so the config allows them.
	cfg := writeFile(t, dir, "duosync.yaml", "policy:\n  max_creates: 10\n")
	env := append(emu.env(), "DUOSYNC_STATE_DIR="+filepath.Join(dir, "state"), "DUOSYNC_CONFIG="+cfg)
	csv := repoFile("sample.csv")

	// plan writes nothing and says changes are pending.
	before := emu.stats(t)
	r := runBin(t, env, "plan", "--source", csv, "--detailed-exitcode")
	if r.code != 2 {
		t.Fatalf("plan --detailed-exitcode with changes: want exit 2, got %v", r)
	}
	if !strings.Contains(r.stdout, "Plan: 7 users to create, 7 enrollments to send, 9 memberships to add.") {
		t.Errorf("plan summary line missing:\n%s", r.stdout)
	}
	if got := emu.stats(t).Writes - before.Writes; got != 0 {
		t.Fatalf("plan made %d write calls", got)
	}

	// apply --yes over TLS with --duo-ca-file (the CA given as a flag this time).
	envNoCA := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "DUO_CA_FILE=") })
	r = runBin(t, envNoCA, "apply", "--source", csv, "--yes", "--duo-ca-file", emu.CAFile)
	if r.code != 0 {
		t.Fatalf("apply --yes: %v", r)
	}

	st := emu.state(t)
	got := map[string][]string{}
	for _, u := range st.Users {
		g := slices.Clone(u.Groups)
		sort.Strings(g)
		got[u.Username] = g
	}
	for name, groups := range wantDemoUsers {
		if !slices.Equal(got[name], groups) {
			t.Errorf("user %s: groups %v, want %v", name, got[name], groups)
		}
	}
	if len(st.Users) != len(wantDemoUsers)+3 {
		t.Errorf("Duo holds %d users, want %d (the 7 new ones and the 3 seeded)", len(st.Users), len(wantDemoUsers)+3)
	}
	for _, u := range st.Users {
		if u.Username == "tom.baker@example.com" && (u.Status != "disabled" || len(u.Groups) != 0) {
			t.Errorf("the disabled user was touched: %+v", u)
		}
		if _, ok := wantDemoUsers[u.Username]; ok && !slices.Contains(u.Aliases, `GLOBAL\`+strings.SplitN(u.Aliases[0], "@", 2)[0]) {
			t.Errorf("user %s: aliases %v, want alias1 and GLOBAL\\alias1", u.Username, u.Aliases)
		}
	}
	sent := map[string]int{}
	for _, m := range st.Outbox {
		sent[m.Email]++
	}
	if len(sent) != len(wantDemoUsers) {
		t.Errorf("outbox: %v, want one email to each new user", sent)
	}
	for name := range wantDemoUsers {
		if sent[name] != 1 {
			t.Errorf("enrollment emails to %s: %d, want 1", name, sent[name])
		}
	}

	// A second apply converges: zero write calls.
	before = emu.stats(t)
	r = runBin(t, env, "apply", "--source", csv, "--yes")
	if r.code != 0 {
		t.Fatalf("second apply: %v", r)
	}
	if got := emu.stats(t).Writes - before.Writes; got != 0 {
		t.Errorf("second apply made %d write calls, want 0\n%v", got, r)
	}
	r = runBin(t, env, "plan", "--source", csv, "--detailed-exitcode")
	if r.code != 0 || !strings.Contains(r.stdout, "No changes. Duo matches the approved requests.") {
		t.Errorf("plan after apply: want exit 0 and no changes, got %v", r)
	}

	// The journal lists the runs.
	r = runBin(t, env, "history")
	if r.code != 0 || strings.Count(r.stdout, "apply") < 2 {
		t.Errorf("history: %v", r)
	}
}

func TestUsageErrorsExit64(t *testing.T) {
	dir := t.TempDir()
	badKey := writeFile(t, dir, "bad.yaml", "duo:\n  host: api-x.duosecurity.com\n  workerz: 3\n")
	badType := writeFile(t, dir, "type.yaml", "policy:\n  max_changes: lots\n")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"plan", "--bogus"}, "flag provided but not defined: -bogus"},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown config key", nil, []string{"plan", "-c", badKey, "--source", "x.csv"}, "line 3: unknown key workerz (in duo)"},
		{"wrong config type", nil, []string{"plan", "-c", badType, "--source", "x.csv"}, "line 2"},
		{"missing config file", nil, []string{"plan", "-c", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"no duo host", []string{"DUO_SKEY=x", "DUO_IKEY=DIX"}, []string{"plan", "--source", "x.csv", "--state-dir", dir}, "duo.host (DUO_HOST, --duo-host)"},
		{"no source", []string{"DUO_SKEY=x", "DUO_IKEY=DIX", "DUO_HOST=h"}, []string{"plan", "--state-dir", dir}, "no source"},
		{"apply without terminal or --yes", nil, []string{"apply", "--source", "x.csv"}, "pass --yes"},
		{"bad workers", []string{"DUOSYNC_WORKERS=0x", "DUO_SKEY=x", "DUO_IKEY=DIX", "DUO_HOST=h"}, []string{"plan", "--source", "x.csv"}, "DUOSYNC_WORKERS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBin(t, append(c.env, "DUOSYNC_CONFIG="), c.args...)
			if r.code != exitUsage {
				t.Fatalf("want exit 64, got %v", r)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr does not say %q:\n%s", c.want, r.stderr)
			}
		})
	}
}

func TestHelpListsFlagsWithEnv(t *testing.T) {
	r := runBin(t, nil, "plan", "--help")
	if r.code != 0 {
		t.Fatalf("plan --help: %v", r)
	}
	for _, want := range []string{"--duo-host HOST", "env DUO_HOST", "--duo-skey-file FILE", "env DUO_SKEY_FILE", "--detailed-exitcode", "-o FILE"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --help lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runBin(t, nil, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version: %v", r)
	}
}

func TestWrongSecretKeyIsRejectedAndNotShown(t *testing.T) {
	dir := t.TempDir()
	emu := startDuo(t)
	const wrong = "WRONGSECRETwrongsecretWRONGSECRETwrong12"
	env := []string{"DUO_HOST=" + emu.Host, "DUO_IKEY=" + emu.IKey, "DUO_SKEY=" + wrong, "DUO_CA_FILE=" + emu.CAFile,
		"DUOSYNC_STATE_DIR=" + filepath.Join(dir, "state")}
	r := runBin(t, env, "plan", "--source", repoFile("sample.csv"))
	if r.code != exitError {
		t.Fatalf("plan with a wrong skey: want exit 1, got %v", r)
	}
	if !strings.Contains(r.stderr, "40103") {
		t.Errorf("error does not carry Duo's code 40103:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, wrong) {
		t.Errorf("the secret key appears in the output:\n%v", r)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "state", "journal.db"))
	if strings.Contains(string(data), wrong) {
		t.Error("the secret key is in the journal")
	}
}
