package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duosync/duosync/internal/testenv"
)

// Recognisable secrets: if any of them, or an encoding of it, leaves the
// process anywhere but where it must (the environment), the audit fails.
const (
	auditDuoSKey  = "SKEYauditDUOSECRETaudit0123456789abcdefX"
	auditSNPass   = "SNPASSaudit-ServiceNow-secret-4711"
	auditSMTPPass = "SMTPaudit-mail-secret-0815"
)

// leaks returns where any secret, in plain text or a common encoding,
// occurs in data.
func leaks(name string, data []byte, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), url.QueryEscape(s), hex.EncodeToString([]byte(s))} {
			if bytes.Contains(data, []byte(form)) {
				found = append(found, fmt.Sprintf("%s holds %q", name, form))
			}
		}
	}
	return found
}

// scanTree scans every file under dir.
func scanTree(t *testing.T, dir string, secrets ...string) []string {
	t.Helper()
	var found []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found = append(found, leaks(p, data, secrets...)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestScannerFindsALeak shows the audit can fail: a secret written to a
// file, raw or encoded, is found.
func TestScannerFindsALeak(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "log.txt", "level=INFO msg=call auth="+base64.StdEncoding.EncodeToString([]byte(auditDuoSKey)))
	writeFile(t, dir, "clean.txt", "nothing here")
	if got := scanTree(t, dir, auditDuoSKey); len(got) != 1 || !strings.Contains(got[0], "log.txt") {
		t.Fatalf("scanner: %v, want exactly the leak in log.txt", got)
	}
}

// TestSecretsAudit runs every command with recognisable secrets and scans
// everything that leaves the process: stdout, stderr (the logs), the report
// files, the journal, plan files, the email, and the command line of the
// running process.
func TestSecretsAudit(t *testing.T) {
	dir := t.TempDir()
	mp := testenv.Mailpit(t)
	// The Duo emulator takes its skey from the environment, so it matches.
	line, _, _ := startProcess(t, []string{"emulate", "duo", "--seed", writeSeed(t, dir), "--latency", "30ms"}, []string{"DUO_EMULATOR_SKEY=" + auditDuoSKey})
	emu := parseDuoReady(t, line)
	snLine, _, _ := startProcess(t, []string{"emulate", "servicenow", "--generate", "30"}, []string{"SN_PASSWORD=" + auditSNPass})
	sn := parseSNReady(t, snLine)

	state := filepath.Join(dir, "state")
	writeFile(t, dir, "smtp-password", auditSMTPPass+"\n")
	writeFile(t, dir, "duo-skey", auditDuoSKey+"\n")
	cfg := writeFile(t, dir, "duosync.yaml", fmt.Sprintf(`duo:
  host: %s
  ikey: %s
  skey_file: duo-skey
  ca_file: %s
source:
  csv: [%s]
  servicenow:
    instance: %s
    user: %s
    write_back: { work_notes: true }
mapping:
  groups_by_item: { "Duo MFA Enrollment": ["MFA Users"] }
policy:
  max_creates: 1000
report:
  email:
    smtp: %s
    tls: none
    user: duosync
    password_file: smtp-password
    from: duosync@example.com
    to: [it@example.com]
schedules:
  - name: nightly
    cron: "@daily"
    mode: plan
`, emu.Host, emu.IKey, emu.CAFile, absRepoFile(t, "sample.csv"), sn.URL, sn.User, mp.SMTPAddr))
	env := []string{"DUOSYNC_CONFIG=" + cfg, "DUOSYNC_STATE_DIR=" + state, "SN_PASSWORD=" + auditSNPass}
	secrets := []string{auditDuoSKey, auditSNPass, auditSMTPPass}

	var outputs []result
	run := func(args ...string) result {
		r := runBin(t, env, args...)
		outputs = append(outputs, r)
		return r
	}
	planFile := filepath.Join(dir, "plan.json")
	for _, args := range [][]string{
		{"validate"},
		{"validate", "--format", "json"},
		{"plan", "-o", planFile},
		{"apply", "--yes", planFile},
		{"apply", "--yes", "--source", "servicenow"},
		{"report", "--last"},
		{"report", "--last", "--format", "json"},
		{"report", "--last", "--format", "csv"},
		{"report", "--last", "--format", "html"},
		{"report", "--last", "--send"},
		{"history"},
		{"schedule", "--once", "nightly"},
		{"schedule", "--next", "2"},
		{"plan", "--help"},
	} {
		// validate exits 1: sample.csv has one invalid row, on purpose; the
		// ServiceNow apply exits 3: some generated requests ask for groups
		// the demo's Duo lacks.
		r := run(args...)
		expected := r.code == 0 || (args[0] == "validate" && r.code == exitError) || (len(args) > 3 && args[3] == "servicenow" && r.code == exitPartial)
		if !expected {
			t.Errorf("%v: %v", args, r)
		}
	}
	// A failing run must not leak either: a wrong host, a bad CA.
	run("plan", "--duo-host", "127.0.0.1:1")

	// The command line of a running apply holds no secret (they come from
	// the environment and files).
	slow := exec.Command(binPath, "apply", "--yes", "--source", absRepoFile(t, "sample.csv"), "--force")
	slow.Env = append(cleanEnv(), env...)
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", slow.Process.Pid))
	_ = slow.Wait()
	if len(cmdline) == 0 {
		t.Error("could not read the running process's command line")
	}

	var found []string
	for i, r := range outputs {
		found = append(found, leaks(fmt.Sprintf("output %d stdout", i), []byte(r.stdout), secrets...)...)
		found = append(found, leaks(fmt.Sprintf("output %d stderr", i), []byte(r.stderr), secrets...)...)
	}
	found = append(found, leaks("cmdline", cmdline, secrets...)...)
	found = append(found, scanTree(t, state, secrets...)...) // journal (and WAL), lock info, reports
	pf, _ := os.ReadFile(planFile)
	found = append(found, leaks("plan.json", pf, secrets...)...)
	for _, m := range mp.Messages(t) {
		found = append(found, leaks("email "+m.ID, mp.Raw(t, m.ID), secrets...)...)
	}
	if len(mp.Messages(t)) == 0 {
		t.Error("no email reached the server: the audit would miss what emails carry")
	}
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
}

func TestSecretFilePermissions(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "duo-skey", "abc\n")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"DUO_HOST=127.0.0.1:1", "DUO_IKEY=DIX", "DUO_SKEY_FILE=" + key, "DUOSYNC_STATE_DIR=" + filepath.Join(dir, "s")}
	r := runBin(t, env, "plan", "--source", "x.csv")
	if r.code != exitUsage || !strings.Contains(r.stderr, "readable by group or others") || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("a world-readable secret file must be refused with a clear message: %v", r)
	}
	// Opting in turns the refusal into acceptance (the read then fails on the host).
	r = runBin(t, append(env, "DUOSYNC_ALLOW_INSECURE_SECRET_FILES=1"), "plan", "--source", absRepoFile(t, "sample.csv"))
	if strings.Contains(r.stderr, "readable by group or others") {
		t.Fatalf("the opt-in did not apply: %v", r)
	}
	// The secret is never a flag value.
	r = runBin(t, nil, "plan", "--duo-skey", "abc")
	if r.code != exitUsage {
		t.Fatalf("--duo-skey must not exist: %v", r)
	}
}

// TestTLSVerificationCannotBeSkipped: without the emulator's CA, the Duo
// client refuses its certificate; there is no flag to skip verification.
func TestTLSVerificationCannotBeSkipped(t *testing.T) {
	dir := t.TempDir()
	emu := startDuo(t)
	env := []string{"DUO_HOST=" + emu.Host, "DUO_IKEY=" + emu.IKey, "DUO_SKEY=" + emu.SKey, "DUOSYNC_STATE_DIR=" + filepath.Join(dir, "s")}
	r := runBin(t, env, "plan", "--source", absRepoFile(t, "sample.csv"))
	if r.code != exitError || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("want a certificate error without the CA: %v", r)
	}
	h := runBin(t, nil, "plan", "--help")
	if strings.Contains(strings.ToLower(h.stdout), "insecure") || strings.Contains(strings.ToLower(h.stdout), "skip-verify") {
		t.Errorf("a flag offers to skip TLS verification:\n%s", h.stdout)
	}
}

func parseDuoReady(t *testing.T, line []byte) *duoEmu {
	t.Helper()
	var e duoEmu
	if err := jsonUnmarshal(line, &e); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return &e
}

func parseSNReady(t *testing.T, line []byte) *snEmu {
	t.Helper()
	var e snEmu
	if err := jsonUnmarshal(line, &e); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return &e
}

func absRepoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(repoFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
