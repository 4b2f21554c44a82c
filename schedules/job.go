// Package schedules turns the config's `schedules:` list into runs: it
// validates the jobs, prints their upcoming times, and runs them with
// robfig/cron v3 so that no job overlaps itself or another job.
package schedules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Modes a job can run in.
const (
	ModePlan  = "plan"
	ModeApply = "apply"
)

// Job is one entry of the config's `schedules:` list.
type Job struct {
	// Name identifies the job in logs, reports and `duosync schedule --once NAME`.
	Name string `yaml:"name" json:"name"`
	// Cron is a five-field spec, a descriptor (@hourly, @daily, @every 15m),
	// optionally prefixed with CRON_TZ=Zone or TZ=Zone. Without a zone the
	// daemon's local time zone applies.
	Cron string `yaml:"cron" json:"cron"`
	// Mode is "plan" or "apply".
	Mode string `yaml:"mode" json:"mode"`
	// Source, when set, overrides the config's source for this job: CSV
	// paths or globs, or the single word "servicenow".
	Source []string `yaml:"source,omitempty" json:"source,omitempty"`
	// EmailWhen, when set, overrides report.email.when for this job:
	// always, changes or failures.
	EmailWhen string `yaml:"email_when,omitempty" json:"email_when,omitempty"`
}

// emailWhens are the values report.email.when accepts (DESIGN.md).
var emailWhens = []string{"always", "changes", "failures"}

// Validate checks every job and returns all problems found, each naming the
// job's index, its name and the bad field, e.g.
//
//	schedules[1] "hourly": cron: expected exactly 5 fields, found 6: [0 5 * * * *]
func Validate(jobs []Job) error {
	var errs []error
	seen := map[string]int{}
	for i, j := range jobs {
		where := fmt.Sprintf("schedules[%d] %q", i, j.Name)
		fail := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...)))
		}

		switch {
		case j.Name == "":
			fail("name", "required")
		case strings.TrimSpace(j.Name) != j.Name || strings.ContainsAny(j.Name, " \t\r\n"):
			fail("name", "must not contain spaces (it is used as `--once NAME`)")
		default:
			if first, dup := seen[j.Name]; dup {
				fail("name", "duplicate of schedules[%d]", first)
			} else {
				seen[j.Name] = i
			}
		}

		if _, err := parseSpec(j.Cron); err != nil {
			fail("cron", "%v", err)
		}

		switch j.Mode {
		case ModePlan, ModeApply:
		case "":
			fail("mode", "required (plan or apply)")
		default:
			fail("mode", "%q is not plan or apply", j.Mode)
		}

		for k, s := range j.Source {
			if strings.TrimSpace(s) == "" {
				fail(fmt.Sprintf("source[%d]", k), "empty")
			}
		}

		if j.EmailWhen != "" && !slices.Contains(emailWhens, j.EmailWhen) {
			fail("email_when", "%q is not one of %s", j.EmailWhen, strings.Join(emailWhens, ", "))
		}
	}
	return errors.Join(errs...)
}

// parseSpec parses a cron spec with robfig/cron's standard parser, after the
// checks that parser lacks: it panics on "CRON_TZ=Zone" with nothing after
// the zone, silently reads an empty zone as UTC, rounds @every below one
// second up to one second, and accepts schedules that never fire.
func parseSpec(spec string) (cron.Schedule, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("required")
	}
	if spec != strings.TrimSpace(spec) {
		return nil, fmt.Errorf("%q has leading or trailing spaces", spec)
	}
	rest := spec
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		zone, after, ok := strings.Cut(spec[strings.Index(spec, "=")+1:], " ")
		if zone == "" {
			return nil, fmt.Errorf("%q: empty time zone", spec)
		}
		if !ok || strings.TrimSpace(after) == "" || strings.ContainsAny(zone, "\t\r\n") {
			return nil, fmt.Errorf("%q: time zone is not followed by a space and a schedule", spec)
		}
		rest = strings.TrimSpace(after)
	}
	if d, ok := strings.CutPrefix(rest, "@every "); ok {
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("%q: %v", spec, err)
		}
		if dur < time.Second || dur%time.Second != 0 {
			return nil, fmt.Errorf("%q: @every needs a whole number of seconds, at least 1s", spec)
		}
	}

	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	// A spec like "0 0 30 2 *" (30 February) parses but never fires; robfig
	// reports that as a zero time.
	if sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("%q never fires", spec)
	}
	return withFallBackOnce(sched), nil
}
