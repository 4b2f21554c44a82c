package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Cost model constants (DESIGN.md, "Cost model").
const (
	usersPage  = 300 // users per page at limit=300
	lookupSize = 100 // usernames per username_list call
	groupsPage = 100 // groups per page
)

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// minReads is the fewest reads the cost model allows: the first users page
// (it says total_objects), then the cheaper of paging the rest and looking
// the needed usernames up, then the group pages.
func minReads(totalUsers, needed, groups int) int {
	return 1 + min(ceilDiv(totalUsers, usersPage)-1, ceilDiv(needed, lookupSize)) + max(1, ceilDiv(groups, groupsPage))
}

// minWrites is one call per action: bulk_create cannot be used, because the
// default mapping sets aliases and bulk_create takes none.
func minWrites(sc Scale) int { return 3*sc.NewUsers + sc.NewMemberships }

// goal is one of issue 5's goals, measured.
type goal struct {
	Name, Detail string
	Met          bool
}

func (g goal) verdict() string {
	if g.Met {
		return "PASS"
	}
	return "MISS"
}

var num = message.NewPrinter(language.English)

// peakMemory is the figure the memory goal is judged on: the resident set
// when the kernel tells it, else the Go runtime's mapped memory.
func peakMemory(m memPeak) (uint64, string) {
	if m.HWM > 0 {
		return m.HWM, "VmHWM"
	}
	return m.Sys, "MemStats.Sys"
}

// scaledWriteWall is the baseline's write time for the whole export.
func (bl baselineRun) scaledWriteWall() time.Duration { return bl.WriteWall * time.Duration(bl.Share) }

// goals measures duosync against issue 5's goals.
func goals(sc Scale, d duosyncRun, bl *baselineRun) []goal {
	minimum := minReads(sc.Users, sc.Requests(), sc.Groups) + minWrites(sc)
	calls := int(d.PlanStats.Calls + d.ApplyStats.Calls)
	ratio := float64(calls) / float64(minimum)
	ideal := time.Duration(d.ApplyStats.Calls) * sc.Latency / time.Duration(sc.Workers)
	mem, memWhat := peakMemory(d.Mem)
	gs := []goal{
		{"calls within 5% of the minimum", num.Sprintf("%d calls, minimum %d (%.3f×)", calls, minimum, ratio), ratio <= 1.05},
		{"apply ≤ 1.25 × calls × latency ÷ pool width",
			num.Sprintf("%s ≤ 1.25 × %d × %s ÷ %d = %s (%.2f×)", round(d.ApplyWall), d.ApplyStats.Calls, sc.Latency, sc.Workers,
				round(ideal*5/4), d.ApplyWall.Seconds()/ideal.Seconds()),
			ideal > 0 && float64(d.ApplyWall) <= 1.25*float64(ideal)},
	}
	if bl != nil {
		speedup := bl.ReadWall.Seconds() / d.PlanWall.Seconds()
		gs = append(gs, goal{"plan ≥ 20× faster than the baseline's read",
			fmt.Sprintf("baseline read %s ÷ plan %s = %.1f×", round(bl.ReadWall), round(d.PlanWall), speedup), speedup >= 20})
	}
	gs = append(gs, goal{"peak memory < 300 MB", fmt.Sprintf("%s (%s)", mb(mem), memWhat), mem < 300<<20})
	return gs
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func mb(n uint64) string {
	if n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// writeReport prints the figures and the goals. It never prints a key.
func writeReport(w io.Writer, sc Scale, d duosyncRun, bl *baselineRun) {
	p := func(format string, a ...any) { num.Fprintf(w, format, a...) }
	p("\nduosync at production scale (issue 5)\n")
	p("  Duo: %d existing users (%d%% unenrolled), %d groups; emulator latency %s per call, no rate limit\n",
		sc.Users, sc.UnenrolledPct, sc.Groups, sc.Latency)
	p("  export: %d approved requests: %d new users (create, enroll, one group), %d new memberships, %d already in sync\n",
		sc.Requests(), sc.NewUsers, sc.NewMemberships, sc.InSync)
	p("  duosync: pool width %d (DESIGN.md's default), default mapping, max_changes raised to 10,000\n", sc.Workers)
	p("  machine: %s; shared with other work, so wall times are noisy\n\n", machine())

	reads := minReads(sc.Users, sc.Requests(), sc.Groups)
	p("  %-30s %12s %12s", "", "duosync", "minimum")
	if bl != nil {
		p(" %26s", num.Sprintf("baseline (1/%d run, ×%d)", bl.Share, bl.Share))
	}
	p("\n")
	row := func(name string, ours, minimum string, base string) {
		p("  %-30s %12s %12s", name, ours, minimum)
		if bl != nil {
			p(" %26s", base)
		}
		p("\n")
	}
	var blReads, blWrites, blTotal, blRead, blWrite, blMem string
	if bl != nil {
		br, bw := bl.ReadStats.Calls, bl.WriteStats.Calls*int64(bl.Share)
		blReads, blWrites, blTotal = num.Sprint(br), num.Sprint(bw), num.Sprint(br+bw)
		blRead = "read " + round(bl.ReadWall).String()
		blWrite = fmt.Sprintf("writes %s (%s ×%d)", round(bl.scaledWriteWall()), round(bl.WriteWall), bl.Share)
		m, what := peakMemory(bl.Mem)
		blMem = mb(m) + " " + what
	}
	ourReads := d.PlanStats.Calls + d.ApplyStats.Reads
	ourWrites := d.ApplyStats.Writes + d.PlanStats.Writes
	row("API calls: reads", num.Sprint(ourReads), num.Sprint(reads), blReads)
	row("API calls: writes", num.Sprint(ourWrites), num.Sprint(minWrites(sc)), blWrites)
	row("API calls: total", num.Sprint(ourReads+ourWrites), num.Sprint(reads+minWrites(sc)), blTotal)
	row("wall: plan (read + diff)", round(d.PlanWall).String(), "", blRead)
	row("  source → desired state", round(d.SourceWall).String(), "", "")
	// The ideal read: the first users page, the lookups 8 at a time
	// (duo.DefaultConcurrency), then the group pages.
	groupPages := max(1, ceilDiv(sc.Groups, groupsPage))
	idealRead := time.Duration(1+ceilDiv(int(d.PlanStats.Calls)-1-groupPages, 8)+groupPages) * sc.Latency
	row("  read Duo (users, groups)", round(d.ReadWall).String(), round(idealRead).String(), "")
	row("  journal history, diff, guards", round(d.DiffWall).String(), "", "")
	ideal := time.Duration(d.ApplyStats.Calls) * sc.Latency / time.Duration(sc.Workers)
	row("wall: apply", round(d.ApplyWall).String(), round(ideal).String(), blWrite)
	m, what := peakMemory(d.Mem)
	row("peak memory", mb(m)+" "+what, "", blMem)
	row("peak Go heap in use", mb(d.Mem.HeapInuse), "", func() string {
		if bl == nil {
			return ""
		}
		return mb(bl.Mem.HeapInuse)
	}())
	p("\n  duosync's plan: %d users to create, %d enrollments, %d memberships; %d users in sync, %d drift entries (reported, not written)\n",
		d.Summary.UsersToCreate, d.Summary.Enrollments, d.Summary.Memberships, d.InSync, d.Drift)
	p("  duosync's apply: %d created, %d enrollment emails, %d memberships added, %d failed; 429s %d, faults %d\n",
		d.Counts.Created, d.Counts.Enrolled, d.Counts.MembershipsAdded, d.Counts.Failed,
		d.PlanStats.RateLimited+d.ApplyStats.RateLimited, sumFaults(d.PlanStats.Faults)+sumFaults(d.ApplyStats.Faults))
	for _, w := range d.Warnings {
		p("  warning from the source: %s\n", w)
	}
	if bl != nil {
		p("  baseline: read %d users in %d calls (limit=100, one page at a time), then ran %d of the %d requests one call at a time (%d failed calls); its writes are scaled ×%d\n",
			bl.UsersRead, bl.ReadStats.Calls, bl.Requests, sc.Requests(), bl.Failed, bl.Share)
	}
	p("\n  goals (measured, never asserted):\n")
	for _, g := range goals(sc, d, bl) {
		p("    %-4s %-46s %s\n", g.verdict(), g.Name, g.Detail)
	}
	p("\n")
}

func sumFaults(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// machine says what the figures were measured on.
func machine() string {
	return strings.TrimSpace(fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %s", numCPU(), gomaxprocs(), goVersion()))
}
