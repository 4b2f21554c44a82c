package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/duosync/duosync/schedules"
)

// yamlDocs decodes every document of a YAML file into nodes.
func yamlDocs(t *testing.T, path string) []*yaml.Node {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, &n)
	}
}

func TestEveryYAMLFileParses(t *testing.T) {
	var n int
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			n++
			if len(yamlDocs(t, path)) == 0 {
				t.Errorf("%s: no YAML document", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("found %d YAML files, want at least the CronJob and the example config", n)
	}
}

// secretish matches the names of environment variables that hold a secret
// (DUO_SKEY, SN_PASSWORD, SN_CLIENT_SECRET, ...); secretKey the config keys.
var (
	secretish = regexp.MustCompile(`(?i)(skey|password|secret|token)`)
	secretKey = regexp.MustCompile(`(?i)^(.*_)?(skey|password|secret|token)$`)
)

// checkNoSecretValues fails for a mapping key that names a secret and has a
// non-empty value, anywhere in n, unless the key says it is a file path.
func checkNoSecretValues(t *testing.T, where string, n *yaml.Node) {
	t.Helper()
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if secretKey.MatchString(k.Value) &&
				v.Kind == yaml.ScalarNode && v.Value != "" {
				t.Errorf("%s: line %d: %s holds a value; secrets belong in files", where, k.Line, k.Value)
			}
		}
	}
	for _, c := range n.Content {
		checkNoSecretValues(t, where, c)
	}
}

// exampleConfig is the part of the config this test checks.
type exampleConfig struct {
	Duo struct {
		SkeyFile string `yaml:"skey_file"`
	} `yaml:"duo"`
	StateDir  string          `yaml:"state_dir"`
	Schedules []schedules.Job `yaml:"schedules"`
	Rest      map[string]any  `yaml:",inline"`
}

func TestExampleConfig(t *testing.T) {
	const path = "duosync.example.yaml"
	docs := yamlDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(docs))
	}
	checkNoSecretValues(t, path, docs[0])

	var cfg exampleConfig
	if err := docs[0].Decode(&cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cfg.Schedules) == 0 {
		t.Fatalf("%s: no schedules", path)
	}
	if err := schedules.Validate(cfg.Schedules); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	if _, err := schedules.Next(cfg.Schedules, time.Now(), 3); err != nil {
		t.Errorf("%s: next runs: %v", path, err)
	}
	if cfg.Duo.SkeyFile == "" || cfg.StateDir == "" {
		t.Errorf("%s: duo.skey_file or state_dir missing", path)
	}
	// Every top-level key of DESIGN.md's configuration is shown.
	for _, key := range []string{"source", "mapping", "policy", "report"} {
		if _, ok := cfg.Rest[key]; !ok {
			t.Errorf("%s: no %s section", path, key)
		}
	}
}

// A minimal view of the Kubernetes objects in cronjob.yaml.
type (
	k8sObject struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		Spec cronJobSpec       `yaml:"spec"`
	}
	cronJobSpec struct {
		Schedule          string `yaml:"schedule"`
		TimeZone          string `yaml:"timeZone"`
		ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
		JobTemplate       struct {
			Spec struct {
				BackoffLimit *int `yaml:"backoffLimit"`
				Template     struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	}
	podSpec struct {
		RestartPolicy   string `yaml:"restartPolicy"`
		SecurityContext struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []struct {
			Name string   `yaml:"name"`
			Args []string `yaml:"args"`
			Env  []struct {
				Name      string         `yaml:"name"`
				Value     string         `yaml:"value"`
				ValueFrom map[string]any `yaml:"valueFrom"`
			} `yaml:"env"`
			SecurityContext struct {
				AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
				ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
				Capabilities             struct {
					Drop []string `yaml:"drop"`
				} `yaml:"capabilities"`
			} `yaml:"securityContext"`
			VolumeMounts []struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
				ReadOnly  bool   `yaml:"readOnly"`
			} `yaml:"volumeMounts"`
		} `yaml:"containers"`
		Volumes []struct {
			Name      string         `yaml:"name"`
			ConfigMap map[string]any `yaml:"configMap"`
			Secret    *struct {
				SecretName string `yaml:"secretName"`
			} `yaml:"secret"`
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
			EmptyDir map[string]any `yaml:"emptyDir"`
		} `yaml:"volumes"`
	}
)

func TestKubernetesCronJob(t *testing.T) {
	const path = "kubernetes/cronjob.yaml"
	objects := map[string]k8sObject{} // by kind/name
	var cj *k8sObject
	for _, d := range yamlDocs(t, path) {
		checkNoSecretValues(t, path, d)
		var o k8sObject
		if err := d.Decode(&o); err != nil {
			t.Fatalf("%s: line %d: %v", path, d.Line, err)
		}
		if o.Kind == "Secret" {
			t.Errorf("%s: ships a Secret: secrets are created from files, not kept in the repo", path)
		}
		objects[o.Kind+"/"+o.Metadata.Name] = o
		if o.Kind == "CronJob" {
			cj = &o
		}
	}
	if cj == nil {
		t.Fatalf("%s: no CronJob", path)
	}
	s := cj.Spec
	if s.ConcurrencyPolicy != "Forbid" {
		t.Errorf("concurrencyPolicy = %q, want Forbid", s.ConcurrencyPolicy)
	}
	if _, err := cron.ParseStandard(s.Schedule); err != nil {
		t.Errorf("schedule %q: %v", s.Schedule, err)
	}
	if s.TimeZone != "" {
		if _, err := time.LoadLocation(s.TimeZone); err != nil {
			t.Errorf("timeZone %q: %v", s.TimeZone, err)
		}
	}
	if b := s.JobTemplate.Spec.BackoffLimit; b == nil || *b != 0 {
		t.Errorf("backoffLimit = %v, want 0 (the next tick converges)", b)
	}
	pod := s.JobTemplate.Spec.Template.Spec
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy = %q, want Never", pod.RestartPolicy)
	}
	if p := pod.SecurityContext.RunAsNonRoot; p == nil || !*p {
		t.Error("pod securityContext: runAsNonRoot is not true")
	}
	if u := pod.SecurityContext.RunAsUser; u == nil || *u == 0 {
		t.Error("pod securityContext: runAsUser missing or root")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container: readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container: allowPrivilegeEscalation is not false")
	}
	if strings.Join(sc.Capabilities.Drop, ",") != "ALL" {
		t.Errorf("container: capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if len(c.Args) < 2 || c.Args[0] != "apply" || !strings.Contains(strings.Join(c.Args, " "), "--yes") {
		t.Errorf("args %v, want apply --yes", c.Args)
	}

	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	mounts := map[string]string{} // mount path -> volume
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("volumeMount %q has no volume", m.Name)
		}
		mounts[m.MountPath] = m.Name
	}
	for _, v := range pod.Volumes {
		found := false
		for _, m := range c.VolumeMounts {
			found = found || m.Name == v.Name
		}
		if !found {
			t.Errorf("volume %q is not mounted", v.Name)
		}
		if v.PersistentVolumeClaim != nil {
			if _, ok := objects["PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("volume %q claims %q, which the file does not define", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}

	// State: a PVC or an emptyDir at /var/lib/duosync, and writable.
	state, ok := mounts["/var/lib/duosync"]
	if !ok {
		t.Fatal("nothing mounted at /var/lib/duosync")
	}
	if v := pod.Volumes[volumes[state]]; v.PersistentVolumeClaim == nil && v.EmptyDir == nil {
		t.Errorf("state volume %q is neither a PVC nor an emptyDir", state)
	}
	// Secrets: a Secret volume, read-only; env holds only paths into it.
	var secretDir string
	for _, m := range c.VolumeMounts {
		if pod.Volumes[volumes[m.Name]].Secret != nil {
			secretDir = m.MountPath
			if !m.ReadOnly {
				t.Errorf("secret volume %q is mounted read-write", m.Name)
			}
		}
	}
	if secretDir == "" {
		t.Fatal("no Secret volume mounted")
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("env %s comes from valueFrom: secrets are read from the Secret volume", e.Name)
		}
		if secretish.MatchString(e.Name) && e.Name != "DUOSYNC_ALLOW_INSECURE_SECRET_FILES" {
			if !strings.HasSuffix(e.Name, "_FILE") || !strings.HasPrefix(e.Value, secretDir+"/") {
				t.Errorf("env %s=%q: a secret must be a *_FILE path under %s", e.Name, e.Value, secretDir)
			}
		}
	}
	if _, ok := mounts["/tmp"]; !ok {
		t.Error("no writable /tmp for a read-only root filesystem")
	}

	// The config it runs with is in the ConfigMap it mounts, and parses.
	cfgArg := ""
	for i, a := range c.Args {
		if a == "-c" && i+1 < len(c.Args) {
			cfgArg = c.Args[i+1]
		}
	}
	vol := pod.Volumes[volumes[mounts[filepath.Dir(cfgArg)]]]
	cmName, _ := vol.ConfigMap["name"].(string)
	cm, ok := objects["ConfigMap/"+cmName]
	if !ok || cfgArg == "" {
		t.Fatalf("config %q is not in a ConfigMap of the file", cfgArg)
	}
	var cfg exampleConfig
	if err := yaml.Unmarshal([]byte(cm.Data[filepath.Base(cfgArg)]), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: %s: %v", cmName, filepath.Base(cfgArg), err)
	}
	if cfg.StateDir != "/var/lib/duosync" {
		t.Errorf("ConfigMap config state_dir = %q, want the mounted /var/lib/duosync", cfg.StateDir)
	}
}

func TestCrontab(t *testing.T) {
	f, err := os.Open("crontab")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	envLine := regexp.MustCompile(`^[A-Z_]+=`)
	var jobs int
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if envLine.MatchString(l) {
			if secretish.MatchString(strings.SplitN(l, "=", 2)[0]) {
				t.Errorf("crontab:%d: a secret in the crontab: %s", line, l)
			}
			continue
		}
		fields := strings.Fields(l)
		if len(fields) < 7 {
			t.Errorf("crontab:%d: want 5 time fields, a user and a command: %q", line, l)
			continue
		}
		jobs++
		spec := strings.Join(fields[:5], " ")
		if _, err := cron.ParseStandard(spec); err != nil {
			t.Errorf("crontab:%d: schedule %q: %v", line, spec, err)
		}
		cmd := strings.Join(fields[6:], " ")
		if !strings.HasPrefix(cmd, "flock -n ") {
			t.Errorf("crontab:%d: command does not start with flock -n: %q", line, cmd)
		}
		if strings.Contains(cmd, "%") {
			t.Errorf("crontab:%d: %% in a command is a newline to cron", line)
		}
		if !strings.Contains(cmd, "apply --yes") || !strings.Contains(cmd, ">/dev/null") {
			t.Errorf("crontab:%d: want a quiet `duosync apply --yes`: %q", line, cmd)
		}
	}
	if jobs != 1 {
		t.Errorf("crontab has %d job lines, want 1", jobs)
	}
}

func TestEnvFileHoldsNoSecretValue(t *testing.T) {
	b, err := os.ReadFile("duosync.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		name, _, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && !strings.HasPrefix(name, "#") && secretish.MatchString(name) && !strings.HasSuffix(name, "_FILE") {
			t.Errorf("duosync.env.example:%d: %s holds a secret; use %s_FILE", i+1, name, name)
		}
	}
}

// unit reads a systemd unit into key -> values (keys may repeat).
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, ";") {
			out[k] = append(out[k], v)
		}
	}
	return out
}

func TestSystemdUnitsStatically(t *testing.T) {
	for name, want := range map[string]map[string]string{
		"duosync.service":          {"Type": "oneshot"},
		"duosync-schedule.service": {"Type": "exec", "RestartPreventExitStatus": "64"},
	} {
		svc := unit(t, filepath.Join("systemd", name))
		want["ProtectSystem"] = "strict"
		want["StateDirectory"] = "duosync"
		want["NoNewPrivileges"] = "yes"
		want["PrivateTmp"] = "yes"
		want["DynamicUser"] = "yes"
		for k, v := range want {
			if got := svc[k]; len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s=%v, want %s", name, k, got, v)
			}
		}
		if !slices.Contains(svc["LoadCredential"], "duo-skey:/etc/duosync/duo-skey") {
			t.Errorf("%s: LoadCredential=%v lacks duo-skey", name, svc["LoadCredential"])
		}
		if !slices.Contains(svc["Environment"], "DUO_SKEY_FILE=%d/duo-skey") {
			t.Errorf("%s: Environment=%v lacks DUO_SKEY_FILE=%%d/duo-skey", name, svc["Environment"])
		}
		for _, e := range svc["Environment"] {
			env, _, _ := strings.Cut(e, "=")
			if secretish.MatchString(env) && !strings.HasSuffix(env, "_FILE") {
				t.Errorf("%s: Environment=%s puts a secret in the environment", name, e)
			}
		}
		if len(svc["RestrictAddressFamilies"]) == 0 {
			t.Errorf("%s: no RestrictAddressFamilies", name)
		}
		execStart := strings.Join(svc["ExecStart"], " ")
		wantCmd := map[string]string{"duosync.service": "duosync apply --yes", "duosync-schedule.service": "duosync schedule"}[name]
		if !strings.Contains(execStart, wantCmd) {
			t.Errorf("%s: ExecStart=%s, want %s", name, execStart, wantCmd)
		}
	}
	tm := unit(t, "systemd/duosync.timer")
	if len(tm["OnCalendar"]) == 0 || len(tm["WantedBy"]) == 0 {
		t.Errorf("duosync.timer: OnCalendar=%v WantedBy=%v", tm["OnCalendar"], tm["WantedBy"])
	}
}

var unitNames = []string{"duosync.service", "duosync.timer", "duosync-schedule.service"}

// unitsForVerify copies the units to a temporary directory with ExecStart
// pointing at a stand-in executable, since systemd-analyze checks that the
// binary exists and no duosync is installed here.
func unitsForVerify(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	fake := filepath.Join(dir, "duosync")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range unitNames {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/duosync"), []byte(fake))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd): units checked statically only")
	}
	return bin
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	bin := systemdAnalyze(t)
	dir := unitsForVerify(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"verify"}
	for _, n := range unitNames {
		args = append(args, filepath.Join(dir, n))
	}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The sandbox keeps systemd's own exposure score low (lower is better; the
// units score about 1.4 with systemd 252).
func TestSystemdAnalyzeSecurity(t *testing.T) {
	bin := systemdAnalyze(t)
	dir := unitsForVerify(t)
	for _, name := range []string{"duosync.service", "duosync-schedule.service"} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, bin, "security", "--offline=yes", "--no-pager",
			filepath.Join(dir, name)).CombinedOutput()
		cancel()
		if err != nil && bytes.Contains(out, []byte("offline")) {
			t.Skipf("this systemd-analyze cannot score offline: %s", bytes.TrimSpace(out))
		}
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(name) + `: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Skipf("no exposure score in the output (%v):\n%s", err, out)
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		if score > 2.5 {
			t.Errorf("%s: exposure %.1f, want at most 2.5: tighten the sandbox", name, score)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			users = append(users, f[1])
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "ENV") && secretish.MatchString(f[1]) {
			t.Errorf("Dockerfile: a secret in ENV: %s", l)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("Dockerfile: final image %s, want distroless static or scratch", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/duosync", "timetzdata"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || users[len(users)-1] == "root" {
		t.Errorf("Dockerfile: runs as %v, want a non-root USER", users)
	}
	if _, err := os.Stat(filepath.Join("..", "cmd", "duosync")); err != nil {
		t.Errorf("Dockerfile builds ./cmd/duosync: %v", err)
	}
}
