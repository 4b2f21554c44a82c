package schedules

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestValidateAcceptsTheSpecsOfTheDesign(t *testing.T) {
	jobs := []Job{
		{Name: "hourly", Cron: "CRON_TZ=America/New_York 5 * * * *", Mode: "apply"},
		{Name: "tz", Cron: "TZ=Europe/Paris 0 7 * * 1-5", Mode: "plan"},
		{Name: "desc", Cron: "@hourly", Mode: "plan"},
		{Name: "daily", Cron: "@daily", Mode: "apply", EmailWhen: "failures"},
		{Name: "every", Cron: "@every 15m", Mode: "apply", Source: []string{"servicenow"}},
		{Name: "tzdesc", Cron: "CRON_TZ=UTC @weekly", Mode: "plan", Source: []string{"a.csv", "b*.csv"}, EmailWhen: "changes"},
	}
	if err := Validate(jobs); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := Validate(nil); err != nil {
		t.Fatalf("Validate(nil): %v", err)
	}
}

func TestValidateNamesTheJobAndTheField(t *testing.T) {
	cases := []struct {
		job  Job
		want string
	}{
		{Job{Name: "hourly", Cron: "0 5 * * * *", Mode: "apply"},
			`schedules[1] "hourly": cron: expected exactly 5 fields, found 6: [0 5 * * * *]`},
		{Job{Name: "x", Cron: "5 * * *", Mode: "apply"}, `schedules[1] "x": cron: expected exactly 5 fields, found 4`},
		{Job{Name: "x", Cron: "61 * * * *", Mode: "apply"}, `schedules[1] "x": cron: end of range (61) above maximum (59)`},
		{Job{Name: "x", Cron: "", Mode: "apply"}, `schedules[1] "x": cron: required`},
		{Job{Name: "x", Cron: "@fortnightly", Mode: "apply"}, `schedules[1] "x": cron: unrecognized descriptor: @fortnightly`},
		{Job{Name: "x", Cron: "@every soon", Mode: "apply"}, `schedules[1] "x": cron: "@every soon": time: invalid duration`},
		{Job{Name: "x", Cron: "@every 500ms", Mode: "apply"}, `cron: "@every 500ms": @every needs a whole number of seconds, at least 1s`},
		{Job{Name: "x", Cron: "@every -5m", Mode: "apply"}, `at least 1s`},
		{Job{Name: "x", Cron: "CRON_TZ=Mars/Olympus 5 * * * *", Mode: "apply"}, `schedules[1] "x": cron: provided bad location Mars/Olympus`},
		{Job{Name: "x", Cron: "CRON_TZ=America/New_York", Mode: "apply"}, `cron: "CRON_TZ=America/New_York": time zone is not followed by a space and a schedule`},
		{Job{Name: "x", Cron: "CRON_TZ=America/New_York\t5 * * * *", Mode: "apply"}, `is not followed by a space and a schedule`},
		{Job{Name: "x", Cron: "TZ= 5 * * * *", Mode: "apply"}, `cron: "TZ= 5 * * * *": empty time zone`},
		{Job{Name: "x", Cron: "0 0 30 2 *", Mode: "apply"}, `cron: "0 0 30 2 *" never fires`},
		{Job{Name: "x", Cron: " @hourly", Mode: "apply"}, `leading or trailing spaces`},
		{Job{Name: "x", Cron: "@hourly"}, `schedules[1] "x": mode: required (plan or apply)`},
		{Job{Name: "x", Cron: "@hourly", Mode: "Apply"}, `schedules[1] "x": mode: "Apply" is not plan or apply`},
		{Job{Name: "x", Cron: "@hourly", Mode: "plan", Source: []string{"a.csv", " "}}, `schedules[1] "x": source[1]: empty`},
		{Job{Name: "x", Cron: "@hourly", Mode: "plan", EmailWhen: "sometimes"}, `schedules[1] "x": email_when: "sometimes" is not one of always, changes, failures`},
		{Job{Cron: "@hourly", Mode: "plan"}, `schedules[1] "": name: required`},
		{Job{Name: "two words", Cron: "@hourly", Mode: "plan"}, `schedules[1] "two words": name: must not contain spaces`},
		{Job{Name: "first", Cron: "@hourly", Mode: "plan"}, `schedules[1] "first": name: duplicate of schedules[0]`},
	}
	for _, c := range cases {
		jobs := []Job{{Name: "first", Cron: "@daily", Mode: "plan"}, c.job}
		err := Validate(jobs)
		if err == nil {
			t.Errorf("Validate(%+v) = nil, want %q", c.job, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %q, want it to contain %q", c.job, err, c.want)
		}
		if strings.Contains(err.Error(), "schedules[0]") && !strings.Contains(c.want, "schedules[0]") {
			t.Errorf("Validate(%+v) = %q blames the valid job 0", c.job, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Validate([]Job{
		{Name: "a", Cron: "bad", Mode: "plan"},
		{Name: "b", Cron: "@hourly", Mode: "nope"},
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`schedules[0] "a": cron:`, `schedules[1] "b": mode:`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Whatever the input, Validate returns an error or nil; it never panics
// (robfig's parser itself panics on "CRON_TZ=Zone" with no schedule).
func FuzzValidateCron(f *testing.F) {
	for _, s := range []string{"CRON_TZ=UTC", "TZ=", "CRON_TZ=America/New_York 5 * * * *", "@every 1s", "*/5 1-3 * JAN MON", "TZ=UTC\t@daily", "@every"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		_ = Validate([]Job{{Name: "f", Cron: spec, Mode: "plan"}})
	})
}

func TestJobDecodesFromYAML(t *testing.T) {
	const doc = `
- name: hourly
  cron: "CRON_TZ=America/New_York 5 * * * *"
  mode: apply
- name: nightly-plan
  cron: "@daily"
  mode: plan
  source: [exports/a.csv, servicenow]
  email_when: changes
`
	var jobs []Job
	if err := yaml.Unmarshal([]byte(doc), &jobs); err != nil {
		t.Fatal(err)
	}
	want := []Job{
		{Name: "hourly", Cron: "CRON_TZ=America/New_York 5 * * * *", Mode: "apply"},
		{Name: "nightly-plan", Cron: "@daily", Mode: "plan", Source: []string{"exports/a.csv", "servicenow"}, EmailWhen: "changes"},
	}
	if len(jobs) != len(want) {
		t.Fatalf("decoded %d jobs, want %d", len(jobs), len(want))
	}
	for i := range want {
		if jobs[i].Name != want[i].Name || jobs[i].Cron != want[i].Cron || jobs[i].Mode != want[i].Mode ||
			jobs[i].EmailWhen != want[i].EmailWhen || strings.Join(jobs[i].Source, ",") != strings.Join(want[i].Source, ",") {
			t.Errorf("job %d = %+v, want %+v", i, jobs[i], want[i])
		}
	}
	if err := Validate(jobs); err != nil {
		t.Fatal(err)
	}
}
