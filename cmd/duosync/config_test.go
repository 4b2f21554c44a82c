package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example config in deploy/ is the full contract of DESIGN.md: it must
// load with the strict loader, and every key it sets must land.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := loadConfig(repoFile("deploy/duosync.example.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatalf("deploy/duosync.example.yaml: %v", err)
	}
	if cfg.Duo.Host == "" || cfg.Duo.Workers == 0 || len(cfg.Schedules) == 0 || cfg.Report.Email.SMTP == "" {
		t.Errorf("example config left keys empty: %+v", cfg)
	}
	if _, err := cfg.Mapping.toMapping(); err != nil {
		t.Errorf("mapping: %v", err)
	}
	if _, err := cfg.Policy.toPolicy(); err != nil {
		t.Errorf("policy: %v", err)
	}
}

func TestConfigErrorsNameLineAndKey(t *testing.T) {
	cases := map[string]string{
		"duo:\n  hots: x\n":                    "line 2: unknown key hots (in duo)",
		"nope: 1\n":                            "line 1: unknown key nope (in top level)",
		"policy:\n  max_resends: many\n":       "line 2: cannot unmarshal !!str `many` into int (key max_resends)",
		"source:\n  servicenow:\n    tabel: x": "unknown key tabel (in source.servicenow)",
		"duo: [1, 2]\n":                        "line 1",
	}
	for in, want := range cases {
		var cfg Config
		err := decodeConfig([]byte(in), &cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", in, err, want)
		}
	}
	var cfg Config
	if err := decodeConfig(nil, &cfg); err != nil {
		t.Errorf("an empty file is an empty config: %v", err)
	}
}

func TestPolicyAndMappingOverlayDefaults(t *testing.T) {
	var cfg Config
	if err := decodeConfig([]byte("policy:\n  max_creates: 25\n  resend_after: 24h\nmapping:\n  username: \"{requested_for.user_name}\"\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Policy.toPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxCreates.String() != "25" || p.ResendAfter.Hours() != 24 || p.MaxResends != 2 || !p.Enroll {
		t.Errorf("policy: %+v", p)
	}
	m, err := cfg.Mapping.toMapping()
	if err != nil {
		t.Fatal(err)
	}
	if m.Username != "{requested_for.user_name}" || m.Email != "{requested_for.email}" || m.Alias2 != `GLOBAL\{requested_for.user_name}` {
		t.Errorf("mapping: %+v", m)
	}
	if err := decodeConfig([]byte("policy:\n  resend_after: soon\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Policy.toPolicy(); err == nil || !strings.Contains(err.Error(), "policy.resend_after") {
		t.Errorf("a bad duration must name policy.resend_after: %v", err)
	}
}

func TestSecretFromEnvWinsAndFileIsTrimmed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s")
	if err := os.WriteFile(p, []byte("  file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readSecret("x", "X", p, func(string) string { return "" }, false)
	if err != nil || got != "file-secret" {
		t.Fatalf("from file: %q %v", got, err)
	}
	got, _ = readSecret("x", "X", p, func(k string) string { return map[string]string{"X": "env-secret"}[k] }, false)
	if got != "env-secret" {
		t.Fatalf("env must win: %q", got)
	}
	_, err = readSecret("Duo secret key", "X", filepath.Join(dir, "missing"), func(string) string { return "" }, false)
	if err == nil || !strings.Contains(err.Error(), "Duo secret key file") {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzConfig: the loader never panics, whatever the bytes.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"", "duo:\n  host: h\n", "policy:\n  max_creates: 10%\n", "a: &a [*a, *a]\n",
		"schedules:\n  - name: x\n    cron: '@every 1s'\n    mode: apply\n", "\t\tbad", "duo: {workers: -1}",
		"mapping:\n  groups_by_item: {a: [b, c]}\n", "source:\n  csv: [a, b]\n  servicenow: {write_back: {work_notes: yes}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if err := decodeConfig(data, &cfg); err != nil {
			return
		}
		_, _ = cfg.Mapping.toMapping()
		_, _ = cfg.Policy.toPolicy()
	})
}
