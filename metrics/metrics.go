// Package metrics writes a Prometheus textfile after each run, for
// node_exporter's textfile collector
// (--collector.textfile.directory, files named *.prom).
//
// Every series carries a mode label (plan or apply). One file serves every
// mode: a run replaces its own mode's series and keeps the others'. Gauges
// describe the last run; the _total counters add up across runs, read back
// from the previous file, so that rate() and increase() work even when
// several runs happen between two scrapes.
package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// RunMetrics is what one run reports.
type RunMetrics struct {
	Mode     string // plan or apply: the mode label
	Started  time.Time
	Finished time.Time
	// ExitCode is the process exit code of DESIGN.md; 0 and 2 (plan with
	// changes pending) count as success.
	ExitCode    int
	Actions     []ActionCount // this run's actions by kind and result
	APICalls    int           // Duo Admin API calls made
	RateLimited int           // 429 answers received
	Retries     int           // calls retried
}

// ActionCount is the number of actions of one kind with one result, e.g.
// {"create_user", "ok", 12}.
type ActionCount struct {
	Kind   string
	Result string
	Count  int
}

// Succeeded tells whether an exit code counts as a successful run.
func Succeeded(exitCode int) bool { return exitCode == 0 || exitCode == 2 }

// Metric names, in the file.
const (
	nameLastRun       = "duosync_last_run_timestamp_seconds"
	nameLastSuccess   = "duosync_last_success_timestamp_seconds"
	nameDuration      = "duosync_run_duration_seconds"
	nameExitCode      = "duosync_last_exit_code"
	nameLastActions   = "duosync_last_run_actions"
	nameLastAPICalls  = "duosync_last_run_api_calls"
	nameLastRateLimit = "duosync_last_run_ratelimited"
	nameLastRetries   = "duosync_last_run_retries"
	nameRuns          = "duosync_runs_total"
	nameActions       = "duosync_actions_total"
	nameAPICalls      = "duosync_api_calls_total"
	nameRateLimited   = "duosync_ratelimited_total"
	nameRetries       = "duosync_retries_total"
	labelMode         = "mode"
	outcomeSuccess    = "success"
	outcomeFailure    = "failure"
)

// help is the HELP text of each metric; it also says which names are ours
// when the previous file is read back.
var help = map[string]string{
	nameLastRun:       "Unix time the last run finished.",
	nameLastSuccess:   "Unix time the last successful run finished (exit code 0 or 2).",
	nameDuration:      "Wall time of the last run, in seconds.",
	nameExitCode:      "Exit code of the last run.",
	nameLastActions:   "Actions of the last run, by kind and result.",
	nameLastAPICalls:  "Duo Admin API calls made by the last run.",
	nameLastRateLimit: "HTTP 429 answers the last run received from Duo.",
	nameLastRetries:   "API calls the last run retried.",
	nameRuns:          "Runs, by outcome.",
	nameActions:       "Actions of all runs, by kind and result.",
	nameAPICalls:      "Duo Admin API calls made by all runs.",
	nameRateLimited:   "HTTP 429 answers received from Duo by all runs.",
	nameRetries:       "API calls retried by all runs.",
}

// WriteTextfile writes m to path atomically (a temporary file in the same
// directory, then a rename), merged with what the previous file at path
// says: the other modes' series, this mode's last success time when this
// run failed, and the running totals.
func WriteTextfile(path string, m RunMetrics) error {
	if err := m.check(); err != nil {
		return fmt.Errorf("metrics %s: %w", path, err)
	}
	prev, err := readPrevious(path)
	if err != nil {
		return fmt.Errorf("metrics %s: %w", path, err)
	}

	reg := prometheus.NewRegistry()
	gauge := func(name string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help[name]}, append([]string{labelMode}, labels...))
		reg.MustRegister(g)
		return g
	}
	counter := func(name string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help[name]}, append([]string{labelMode}, labels...))
		reg.MustRegister(c)
		return c
	}
	mode := m.Mode
	ok := Succeeded(m.ExitCode)

	gauge(nameLastRun).WithLabelValues(mode).Set(unixSeconds(m.Finished))
	if ok {
		gauge(nameLastSuccess).WithLabelValues(mode).Set(unixSeconds(m.Finished))
	} else if v, found := prev.value(nameLastSuccess, mode, nil); found {
		gauge(nameLastSuccess).WithLabelValues(mode).Set(v)
	}
	gauge(nameDuration).WithLabelValues(mode).Set(m.Finished.Sub(m.Started).Seconds())
	gauge(nameExitCode).WithLabelValues(mode).Set(float64(m.ExitCode))
	gauge(nameLastAPICalls).WithLabelValues(mode).Set(float64(m.APICalls))
	gauge(nameLastRateLimit).WithLabelValues(mode).Set(float64(m.RateLimited))
	gauge(nameLastRetries).WithLabelValues(mode).Set(float64(m.Retries))

	lastActions := gauge(nameLastActions, "kind", "result")
	actions := counter(nameActions, "kind", "result")
	// Totals of kinds this run did not do carry on unchanged.
	for _, lv := range prev.labelSets(nameActions, mode) {
		actions.WithLabelValues(mode, lv["kind"], lv["result"]).Add(prev.mustValue(nameActions, mode, lv))
	}
	for _, a := range m.Actions {
		lastActions.WithLabelValues(mode, a.Kind, a.Result).Add(float64(a.Count))
		actions.WithLabelValues(mode, a.Kind, a.Result).Add(float64(a.Count))
	}

	runs := counter(nameRuns, "outcome")
	for _, o := range []string{outcomeSuccess, outcomeFailure} {
		v, _ := prev.value(nameRuns, mode, map[string]string{"outcome": o})
		runs.WithLabelValues(mode, o).Add(v)
	}
	if ok {
		runs.WithLabelValues(mode, outcomeSuccess).Inc()
	} else {
		runs.WithLabelValues(mode, outcomeFailure).Inc()
	}
	for name, n := range map[string]int{nameAPICalls: m.APICalls, nameRateLimited: m.RateLimited, nameRetries: m.Retries} {
		v, _ := prev.value(name, mode, nil)
		counter(name).WithLabelValues(mode).Add(v + float64(n))
	}

	others := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return prev.otherModes(mode), nil })
	if err := prometheus.WriteToTextfile(path, prometheus.Gatherers{reg, others}); err != nil {
		return fmt.Errorf("write metrics %s: %w", path, err)
	}
	return nil
}

func (m RunMetrics) check() error {
	switch {
	case m.Mode == "":
		return errors.New("mode is empty")
	case m.Started.IsZero() || m.Finished.IsZero():
		return errors.New("start or finish time missing")
	case m.Finished.Before(m.Started):
		return fmt.Errorf("finish %v is before start %v", m.Finished, m.Started)
	case m.APICalls < 0 || m.RateLimited < 0 || m.Retries < 0:
		return fmt.Errorf("negative count: api calls %d, 429s %d, retries %d", m.APICalls, m.RateLimited, m.Retries)
	}
	for _, a := range m.Actions {
		if a.Kind == "" || a.Result == "" || a.Count < 0 {
			return fmt.Errorf("bad action count %+v: kind and result are required, count must not be negative", a)
		}
	}
	return nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// previous is the content of the file a run replaces.
type previous map[string]*dto.MetricFamily

// readPrevious parses the file at path; a missing file is an empty one. A
// file that does not parse is treated as empty too, so that one bad write
// cannot stop metrics for good; its totals start again from zero, which
// Prometheus reads as a counter reset.
func readPrevious(path string) (previous, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return previous{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read previous metrics: %w", err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return previous{}, nil
	}
	return previous(families), nil
}

// matches tells whether metric m has mode and, when want is not nil,
// exactly the labels of want besides mode.
func matches(m *dto.Metric, mode string, want map[string]string) bool {
	got := labels(m)
	if got[labelMode] != mode {
		return false
	}
	if want == nil {
		return len(got) == 1
	}
	if len(got) != len(want)+1 {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// value returns the sample of name for mode and the other labels want.
// Negative values (a hand-edited file) are ignored.
func (p previous) value(name, mode string, want map[string]string) (float64, bool) {
	mf := p[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if matches(m, mode, want) {
			v := sampleValue(m)
			if v < 0 || v != v { // negative or NaN
				return 0, false
			}
			return v, true
		}
	}
	return 0, false
}

func (p previous) mustValue(name, mode string, want map[string]string) float64 {
	v, _ := p.value(name, mode, want)
	return v
}

// labelSets returns the label sets, without mode, of name's samples for mode.
func (p previous) labelSets(name, mode string) []map[string]string {
	var out []map[string]string
	for _, m := range p[name].GetMetric() {
		ls := labels(m)
		if ls[labelMode] != mode {
			continue
		}
		delete(ls, labelMode)
		out = append(out, ls)
	}
	return out
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// otherModes returns the previous file's samples of our metrics for modes
// other than mode, with today's HELP text, so that they merge cleanly.
func (p previous) otherModes(mode string) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for name, mf := range p {
		h, ours := help[name]
		if !ours {
			continue
		}
		want := dto.MetricType_GAUGE
		if isCounter(name) {
			want = dto.MetricType_COUNTER
		}
		if mf.GetType() != want {
			continue
		}
		kept := &dto.MetricFamily{Name: mf.Name, Help: &h, Type: mf.Type}
		for _, m := range mf.GetMetric() {
			if l := labels(m); l[labelMode] != "" && l[labelMode] != mode {
				kept.Metric = append(kept.Metric, m)
			}
		}
		if len(kept.Metric) > 0 {
			out = append(out, kept)
		}
	}
	return out
}

func isCounter(name string) bool {
	switch name {
	case nameRuns, nameActions, nameAPICalls, nameRateLimited, nameRetries:
		return true
	}
	return false
}
