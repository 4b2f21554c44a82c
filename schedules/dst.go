package schedules

import (
	"time"

	"github.com/robfig/cron/v3"
)

// fallBackOnce wraps a spec whose hour field is fixed (like "30 1 * * *") so
// that it fires once, not twice, when clocks go back and its wall-clock time
// happens twice: robfig fires at 01:30 EDT and again at 01:30 EST. This is
// what Vixie cron does, and what a user of a daily job expects. Specs with
// every hour ("5 * * * *") keep firing in both hours, as they do there too.
//
// The hour skipped when clocks go forward is not made up for: robfig simply
// skips "30 2 * * *" that day (Vixie cron would run it at 03:00).
type fallBackOnce struct {
	*cron.SpecSchedule
}

// allHours is the hour field of a spec with every hour set.
const allHours = 1<<24 - 1

func withFallBackOnce(s cron.Schedule) cron.Schedule {
	if spec, ok := s.(*cron.SpecSchedule); ok && spec.Hour&allHours != allHours {
		return fallBackOnce{spec}
	}
	return s
}

func (f fallBackOnce) Next(t time.Time) time.Time {
	n := f.SpecSchedule.Next(t)
	for !n.IsZero() && f.repeats(n) {
		n = f.SpecSchedule.Next(n)
	}
	return n
}

// repeats tells whether the schedule already fired at n's wall-clock time,
// just before clocks went back.
func (f fallBackOnce) repeats(n time.Time) bool {
	loc := f.Location
	if loc == time.Local {
		loc = n.Location()
	}
	n = n.In(loc)
	_, offNow := n.Zone()
	// Clock changes are at most a few hours apart in offset; look 3h back.
	_, offBefore := n.Add(-3 * time.Hour).Zone()
	if offBefore <= offNow {
		return false
	}
	earlier := n.Add(-time.Duration(offBefore-offNow) * time.Second)
	sameWall := earlier.Format(time.DateTime) == n.Format(time.DateTime)
	return sameWall && f.SpecSchedule.Next(earlier.Add(-time.Second)).Equal(earlier)
}
