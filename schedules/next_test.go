package schedules

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// assertTimes compares instants and their offsets, written as RFC 3339.
func assertTimes(t *testing.T, job string, got []time.Time, want ...string) {
	t.Helper()
	var g []string
	for _, tm := range got {
		g = append(g, tm.Format(time.RFC3339))
	}
	if strings.Join(g, " ") != strings.Join(want, " ") {
		t.Errorf("%s:\n got  %v\n want %v", job, g, want)
	}
}

// 2026-11-01 is the US fall-back day: at 02:00 EDT clocks go back to 01:00
// EST, so 01:00-01:59 happens twice.
func TestNextAcrossFallBack(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	jobs := []Job{
		{Name: "nightly", Cron: "CRON_TZ=America/New_York 30 1 * * *", Mode: "apply"},
		{Name: "hourly", Cron: "5 * * * *", Mode: "plan"},
	}
	ups, err := Next(jobs, from, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 2 || ups[0].Job.Name != "nightly" || ups[1].Job.Name != "hourly" {
		t.Fatalf("Next returned %+v, want nightly then hourly", ups)
	}
	// Once a day, as a user expects: robfig alone would also fire at
	// 01:30 EST (see TestRobfigFiresTwiceOnFallBack).
	assertTimes(t, "nightly", ups[0].Times,
		"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00")
	// An every-hour job runs in both 01:xx hours: one hour apart, as always.
	assertTimes(t, "hourly", ups[1].Times,
		"2026-11-01T00:05:00-04:00", "2026-11-01T01:05:00-04:00", "2026-11-01T01:05:00-05:00")
	for _, tm := range ups[0].Times {
		if tm.Location().String() != "America/New_York" {
			t.Errorf("time %v is not in the job's zone", tm)
		}
	}
}

// Documents the surprise that fallBackOnce corrects.
func TestRobfigFiresTwiceOnFallBack(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	s, err := cron.ParseStandard("CRON_TZ=America/New_York 30 1 * * *")
	if err != nil {
		t.Fatal(err)
	}
	first := s.Next(time.Date(2026, 11, 1, 0, 0, 0, 0, ny))
	second := s.Next(first)
	assertTimes(t, "robfig", []time.Time{first, second}, "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00")
}

// 2026-03-08 is the US spring-forward day: 02:00-02:59 does not exist.
func TestNextAcrossSpringForward(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	from := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	ups, err := Next([]Job{
		{Name: "nightly", Cron: "CRON_TZ=America/New_York 30 1 * * *", Mode: "apply"},
		{Name: "gap", Cron: "CRON_TZ=America/New_York 30 2 * * *", Mode: "apply"},
		{Name: "hourly", Cron: "5 * * * *", Mode: "plan"},
	}, from, 3)
	if err != nil {
		t.Fatal(err)
	}
	assertTimes(t, "nightly", ups[0].Times,
		"2026-03-08T01:30:00-05:00", "2026-03-09T01:30:00-04:00", "2026-03-10T01:30:00-04:00")
	// The surprise: a job at a time that does not exist that day is skipped
	// (Vixie cron would run it at 03:00). deploy/README.md says to avoid it.
	assertTimes(t, "gap", ups[1].Times,
		"2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00", "2026-03-11T02:30:00-04:00")
	assertTimes(t, "hourly", ups[2].Times,
		"2026-03-08T00:05:00-05:00", "2026-03-08T01:05:00-05:00", "2026-03-08T03:05:00-04:00")
}

func TestNextZones(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, ny) // 04:00 UTC
	ups, err := Next([]Job{
		{Name: "utc-daily", Cron: "TZ=UTC @daily", Mode: "plan"},
		{Name: "every", Cron: "@every 15m", Mode: "plan"},
		{Name: "tokyo", Cron: "CRON_TZ=Asia/Tokyo 0 9 * * *", Mode: "plan"},
	}, from, 2)
	if err != nil {
		t.Fatal(err)
	}
	assertTimes(t, "utc-daily", ups[0].Times, "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
	assertTimes(t, "every", ups[1].Times, "2026-11-01T00:15:00-04:00", "2026-11-01T00:30:00-04:00")
	assertTimes(t, "tokyo", ups[2].Times, "2026-11-02T09:00:00+09:00", "2026-11-03T09:00:00+09:00")
}

func TestNextRejectsBadInput(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Next([]Job{{Name: "a", Cron: "@hourly", Mode: "plan"}}, from, 0); err == nil {
		t.Error("Next with n=0: want an error")
	}
	_, err := Next([]Job{{Name: "bad", Cron: "* * *", Mode: "plan"}}, from, 3)
	if err == nil || !strings.Contains(err.Error(), `schedules[0] "bad": cron:`) {
		t.Errorf("Next with a bad spec = %v, want the job and field named", err)
	}
}

func TestFormatNext(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	ups, err := Next([]Job{{Name: "nightly", Cron: "CRON_TZ=America/New_York 30 1 * * *", Mode: "apply"},
		{Name: "hourly", Cron: "5 * * * *", Mode: "plan"}},
		time.Date(2026, 11, 1, 0, 30, 0, 0, ny), 3)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := FormatNext(&b, ups); err != nil {
		t.Fatal(err)
	}
	want := `JOB      MODE   TIME                            ZONE
nightly  apply  2026-11-01 01:30:00 EDT -04:00  America/New_York
nightly  apply  2026-11-02 01:30:00 EST -05:00  America/New_York
nightly  apply  2026-11-03 01:30:00 EST -05:00  America/New_York
hourly   plan   2026-11-01 01:05:00 EDT -04:00  America/New_York
hourly   plan   2026-11-01 01:05:00 EST -05:00  America/New_York
hourly   plan   2026-11-01 02:05:00 EST -05:00  America/New_York
`
	if b.String() != want {
		t.Errorf("FormatNext:\n%s\nwant:\n%s", b.String(), want)
	}
}

func ExampleFormatNext() {
	jobs := []Job{{Name: "hourly", Cron: "CRON_TZ=America/New_York 5 * * * *", Mode: "apply"}}
	from := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC) // 01:00 EDT
	ups, _ := Next(jobs, from, 3)
	_ = FormatNext(os.Stdout, ups)
	// Output:
	// JOB     MODE   TIME                            ZONE
	// hourly  apply  2026-11-01 01:05:00 EDT -04:00  America/New_York
	// hourly  apply  2026-11-01 01:05:00 EST -05:00  America/New_York
	// hourly  apply  2026-11-01 02:05:00 EST -05:00  America/New_York
}

func TestZoneName(t *testing.T) {
	if got := zoneName(mustZone(t, "America/New_York")); got != "America/New_York" {
		t.Errorf("zoneName(New York) = %q", got)
	}
	t.Setenv("TZ", "Europe/Paris")
	if got := zoneName(time.Local); got != "Local (Europe/Paris)" {
		t.Errorf("zoneName(Local) with TZ=Europe/Paris = %q", got)
	}
}
