package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads the textfile back with Prometheus' own text parser.
func parse(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the textfile does not parse: %v", err)
	}
	return mfs
}

// get returns the value of name with exactly the labels given as
// "k=v" pairs; it fails the test when there is no such sample.
func get(t *testing.T, mfs map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		want[k] = v
	}
	for _, m := range mfs[name].GetMetric() {
		got := labels(m)
		if len(got) != len(want) {
			continue
		}
		same := true
		for k, v := range want {
			if got[k] != v {
				same = false
			}
		}
		if same {
			return sampleValue(m)
		}
	}
	t.Fatalf("no sample %s%v in the file", name, kv)
	return 0
}

func has(mfs map[string]*dto.MetricFamily, name string) bool { return mfs[name] != nil }

var t0 = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

func run(mode string, exit int, at time.Time, took time.Duration) RunMetrics {
	return RunMetrics{
		Mode: mode, Started: at, Finished: at.Add(took), ExitCode: exit,
		Actions: []ActionCount{
			{Kind: "create_user", Result: "ok", Count: 12},
			{Kind: "enroll", Result: "ok", Count: 11},
			{Kind: "enroll", Result: "failed", Count: 1},
			{Kind: "add_membership", Result: "ok", Count: 30},
		},
		APICalls: 57, RateLimited: 3, Retries: 4,
	}
}

func TestWriteTextfileFiguresEqualTheInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	m := run("apply", 0, t0, 2500*time.Millisecond)
	if err := WriteTextfile(path, m); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, path)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{nameLastRun, nil, float64(t0.Unix()) + 2.5},
		{nameLastSuccess, nil, float64(t0.Unix()) + 2.5},
		{nameDuration, nil, 2.5},
		{nameExitCode, nil, 0},
		{nameLastAPICalls, nil, 57},
		{nameLastRateLimit, nil, 3},
		{nameLastRetries, nil, 4},
		{nameAPICalls, nil, 57},
		{nameRateLimited, nil, 3},
		{nameRetries, nil, 4},
		{nameRuns, []string{"outcome=success"}, 1},
		{nameRuns, []string{"outcome=failure"}, 0},
		{nameLastActions, []string{"kind=create_user", "result=ok"}, 12},
		{nameLastActions, []string{"kind=enroll", "result=ok"}, 11},
		{nameLastActions, []string{"kind=enroll", "result=failed"}, 1},
		{nameLastActions, []string{"kind=add_membership", "result=ok"}, 30},
		{nameActions, []string{"kind=create_user", "result=ok"}, 12},
	}
	for _, c := range checks {
		if got := get(t, mfs, c.name, append([]string{"mode=apply"}, c.labels...)...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if mfs[nameActions].GetType() != dto.MetricType_COUNTER || mfs[nameLastRun].GetType() != dto.MetricType_GAUGE {
		t.Error("wrong metric types")
	}

	// The file passes Prometheus' own naming lint.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	problems, err := promlint.New(f).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestFailedRunKeepsTheLastSuccessAndTotalsAddUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	first := run("apply", 0, t0, time.Second)
	if err := WriteTextfile(path, first); err != nil {
		t.Fatal(err)
	}
	failed := run("apply", 3, t0.Add(time.Hour), 4*time.Second)
	failed.Actions = []ActionCount{{Kind: "create_user", Result: "failed", Count: 2}, {Kind: "create_user", Result: "ok", Count: 1}}
	failed.APICalls, failed.RateLimited, failed.Retries = 10, 0, 2
	if err := WriteTextfile(path, failed); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, path)
	if got, want := get(t, mfs, nameLastSuccess, "mode=apply"), float64(t0.Unix()+1); got != want {
		t.Errorf("last success = %v, want the first run's %v", got, want)
	}
	if got, want := get(t, mfs, nameLastRun, "mode=apply"), float64(t0.Add(time.Hour).Unix()+4); got != want {
		t.Errorf("last run = %v, want %v", got, want)
	}
	if got := get(t, mfs, nameExitCode, "mode=apply"); got != 3 {
		t.Errorf("exit code = %v, want 3", got)
	}
	if got := get(t, mfs, nameDuration, "mode=apply"); got != 4 {
		t.Errorf("duration = %v, want 4", got)
	}
	// Gauges show the last run only ...
	if got := get(t, mfs, nameLastActions, "mode=apply", "kind=create_user", "result=ok"); got != 1 {
		t.Errorf("last run creates = %v, want 1", got)
	}
	for _, gone := range [][]string{{"kind=enroll", "result=ok"}, {"kind=add_membership", "result=ok"}} {
		for _, m := range mfs[nameLastActions].GetMetric() {
			l := labels(m)
			if "kind="+l["kind"] == gone[0] && "result="+l["result"] == gone[1] {
				t.Errorf("last-run gauge %v kept from the previous run", gone)
			}
		}
	}
	// ... counters add up, including kinds this run did not do.
	totals := []struct {
		labels []string
		want   float64
	}{
		{[]string{"kind=create_user", "result=ok"}, 13},
		{[]string{"kind=create_user", "result=failed"}, 2},
		{[]string{"kind=enroll", "result=ok"}, 11},
		{[]string{"kind=add_membership", "result=ok"}, 30},
	}
	for _, c := range totals {
		if got := get(t, mfs, nameActions, append([]string{"mode=apply"}, c.labels...)...); got != c.want {
			t.Errorf("actions_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := get(t, mfs, nameAPICalls, "mode=apply"); got != 67 {
		t.Errorf("api calls total = %v, want 67", got)
	}
	if got := get(t, mfs, nameRetries, "mode=apply"); got != 6 {
		t.Errorf("retries total = %v, want 6", got)
	}
	if s, f := get(t, mfs, nameRuns, "mode=apply", "outcome=success"), get(t, mfs, nameRuns, "mode=apply", "outcome=failure"); s != 1 || f != 1 {
		t.Errorf("runs total success=%v failure=%v, want 1 and 1", s, f)
	}
}

func TestFailedFirstRunHasNoLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	if err := WriteTextfile(path, run("apply", 1, t0, time.Second)); err != nil {
		t.Fatal(err)
	}
	if mfs := parse(t, path); has(mfs, nameLastSuccess) {
		t.Errorf("a last-success time was made up: %v", mfs[nameLastSuccess])
	}
}

func TestPlanWithChangesCountsAsSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	if err := WriteTextfile(path, run("plan", 2, t0, time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, parse(t, path), nameLastSuccess, "mode=plan"); got != float64(t0.Unix()+1) {
		t.Errorf("last success = %v", got)
	}
}

func TestModesShareOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	if err := WriteTextfile(path, run("apply", 0, t0, time.Second)); err != nil {
		t.Fatal(err)
	}
	plan := run("plan", 0, t0.Add(time.Minute), 3*time.Second)
	plan.Actions = nil
	if err := WriteTextfile(path, plan); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, path)
	if got := get(t, mfs, nameLastRun, "mode=apply"); got != float64(t0.Unix()+1) {
		t.Errorf("apply's last run = %v, want it kept", got)
	}
	if got := get(t, mfs, nameActions, "mode=apply", "kind=create_user", "result=ok"); got != 12 {
		t.Errorf("apply's action total = %v, want it kept", got)
	}
	if got := get(t, mfs, nameDuration, "mode=plan"); got != 3 {
		t.Errorf("plan duration = %v", got)
	}
	if got := get(t, mfs, nameRuns, "mode=plan", "outcome=success"); got != 1 {
		t.Errorf("plan runs = %v, want 1 (apply's run not counted)", got)
	}
}

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "duosync.prom")
	for i := range 3 {
		if err := WriteTextfile(path, run("apply", 0, t0.Add(time.Duration(i)*time.Hour), time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "duosync.prom" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only duosync.prom (no temp file left)", names)
	}
	// A failed write leaves nothing behind either, and says where.
	err = WriteTextfile(filepath.Join(dir, "missing", "duosync.prom"), run("apply", 0, t0, time.Second))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing", "duosync.prom")) {
		t.Errorf("write into a missing directory = %v, want an error naming the path", err)
	}
}

func TestCorruptPreviousFileStartsAfresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	if err := os.WriteFile(path, []byte("duosync_last_run_timestamp_seconds{mode=\"apply\" 12\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfile(path, run("apply", 0, t0, time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, parse(t, path), nameAPICalls, "mode=apply"); got != 57 {
		t.Errorf("api calls total = %v, want 57", got)
	}
}

func TestBadInputIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "duosync.prom")
	bad := map[string]func(*RunMetrics){
		"no mode":        func(m *RunMetrics) { m.Mode = "" },
		"no start":       func(m *RunMetrics) { m.Started = time.Time{} },
		"finish first":   func(m *RunMetrics) { m.Finished = m.Started.Add(-time.Second) },
		"negative count": func(m *RunMetrics) { m.Actions[0].Count = -1 },
		"no kind":        func(m *RunMetrics) { m.Actions[0].Kind = "" },
		"negative calls": func(m *RunMetrics) { m.Retries = -2 },
	}
	for name, spoil := range bad {
		m := run("apply", 0, t0, time.Second)
		spoil(&m)
		if err := WriteTextfile(path, m); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a file was written from bad input")
	}
}
