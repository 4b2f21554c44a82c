package schedules

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/robfig/cron/v3"
)

// Upcoming is the next run times of one job, in the job's own time zone.
type Upcoming struct {
	Job   Job
	Times []time.Time
}

// Next returns the next n run times of each job after from, in the order of
// jobs. A job with CRON_TZ= or TZ= gets times in that zone; a job without one
// runs in the daemon's local zone, which from's location stands for (pass
// time.Now() in production, a fixed time in a zone in tests).
//
// The times are exactly those the Runner fires at. Across daylight-saving
// changes: a fixed-time job in the hour that repeats when clocks go back
// fires once (see fallBackOnce), a job of every hour fires in both; a job in
// the hour skipped when clocks go forward does not fire that day. An @every
// job counts from from, as the daemon counts from its start.
func Next(jobs []Job, from time.Time, n int) ([]Upcoming, error) {
	if n < 1 {
		return nil, fmt.Errorf("next: count must be at least 1, got %d", n)
	}
	if err := Validate(jobs); err != nil {
		return nil, err
	}
	out := make([]Upcoming, 0, len(jobs))
	for _, j := range jobs {
		sched, err := parseSpec(j.Cron)
		if err != nil { // Validate already passed; kept for safety
			return nil, fmt.Errorf("schedule %q: cron: %w", j.Name, err)
		}
		loc := zoneOf(sched, from.Location())
		u := Upcoming{Job: j}
		t := from
		for range n {
			t = sched.Next(t)
			if t.IsZero() {
				break
			}
			u.Times = append(u.Times, t.In(loc))
		}
		out = append(out, u)
	}
	return out, nil
}

// zoneOf is the time zone a schedule fires in: its CRON_TZ, or def.
func zoneOf(s cron.Schedule, def *time.Location) *time.Location {
	if f, ok := s.(fallBackOnce); ok {
		s = f.SpecSchedule
	}
	if spec, ok := s.(*cron.SpecSchedule); ok && spec.Location != time.Local {
		return spec.Location
	}
	return def
}

// FormatNext prints the upcoming times as a table, one line per run: the
// job, its mode, the time with its zone abbreviation and UTC offset (so that
// the two 01:30 runs of a daylight-saving fall-back day are told apart), and
// the zone's name.
func FormatNext(w io.Writer, ups []Upcoming) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tMODE\tTIME\tZONE")
	for _, u := range ups {
		if len(u.Times) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t(never)\t\n", u.Job.Name, u.Job.Mode)
		}
		for _, t := range u.Times {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Job.Name, u.Job.Mode,
				t.Format("2006-01-02 15:04:05 MST -07:00"), zoneName(t.Location()))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print next runs: %w", err)
	}
	return nil
}

// zoneName names a zone; Go calls the host's zone "Local", which says
// little, so it is named from $TZ or /etc/localtime where they tell.
func zoneName(loc *time.Location) string {
	if loc != time.Local {
		return loc.String()
	}
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); tz != "" {
		return "Local (" + tz + ")"
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok {
			return "Local (" + name + ")"
		}
	}
	return "Local"
}
