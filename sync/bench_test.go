package sync

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/source"
)

// benchScenario is issue 5's scale: 100,000 Duo users (5% unenrolled) and
// 10,000 approved requests, of which 2,000 are new users (create, enroll,
// one group) and 1,000 new memberships for existing users.
func benchScenario(b *testing.B) (Have, []source.Request) {
	b.Helper()
	groups := []duo.Group{vpn, mfa, admins}
	users := make([]duo.User, 100_000)
	for i := range users {
		name := fmt.Sprintf("user.%06d", i)
		u := duoUser(fmt.Sprintf("DU%018d", i), name, name+"@example.com", vpn)
		u.IsEnrolled = i%20 != 0
		users[i] = u
	}
	reqs := make([]source.Request, 0, 10_000)
	for i := range 10_000 {
		var name, group string
		switch {
		case i < 2000: // new users
			name, group = fmt.Sprintf("new.%06d", i), "MFA Users"
		case i < 3000: // existing users, a new membership
			name, group = fmt.Sprintf("user.%06d", i*7), "Admins"
		default: // existing users, in sync
			name, group = fmt.Sprintf("user.%06d", i*7), "VPN Users"
		}
		r := person(fmt.Sprintf("RITM%07d", i), name, name+"@example.com", group)
		r.Origin = source.Origin{File: "bench.csv", Line: i + 2}
		reqs = append(reqs, r)
	}
	return Have{Users: users, Groups: groups, Total: len(users)}, reqs
}

func BenchmarkBuildDesired10k(b *testing.B) {
	_, reqs := benchScenario(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildDesired(reqs, nil, DefaultMapping(), Filter{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff100kUsers10kRequests(b *testing.B) {
	have, reqs := benchScenario(b)
	want, err := BuildDesired(reqs, nil, DefaultMapping(), Filter{})
	if err != nil {
		b.Fatal(err)
	}
	var plan Plan
	b.ReportAllocs()
	for b.Loop() {
		plan = Diff(have, want, nil, DefaultPolicy(), time.Now())
	}
	s := plan.Summary()
	if s.UsersToCreate != 2000 || s.Memberships != 3000 {
		b.Fatalf("summary %+v", s)
	}
	b.ReportMetric(float64(len(plan.Actions)), "actions")
}

// BenchmarkApplyEngineOverhead measures the engine's own cost per action
// against a fake Duo that answers at once.
func BenchmarkApplyEngineOverhead(b *testing.B) {
	have, reqs := benchScenario(b)
	want, err := BuildDesired(reqs[:3000], nil, DefaultMapping(), Filter{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f := newFakeDuo(nil, have.Groups)
		plan := Diff(f.have(want), want, nil, DefaultPolicy(), time.Now())
		b.StartTimer()
		res := Apply(context.Background(), plan, f, &fakeJournal{}, ApplyOptions{Workers: 8})
		if res.Partial() {
			b.Fatalf("counts %+v", res.Counts)
		}
	}
}

// BenchmarkBuilderMillionRows streams a million-row export through the
// builder (90% skipped as not approved, 100,000 requests for 5,000 users)
// and reports the heap the desired state holds.
func BenchmarkBuilderMillionRows(b *testing.B) {
	for b.Loop() {
		bl, err := NewBuilder(DefaultMapping(), Filter{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 1_000_000 {
			name := fmt.Sprintf("user.%06d", i%50_000)
			r := person(fmt.Sprintf("RITM%07d", i), name, name+"@example.com", "VPN Users")
			if i%10 != 0 {
				r.Fields["approval"] = "requested"
			}
			r.Origin = source.Origin{File: "big.csv", Line: i + 2}
			if err := bl.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		d := bl.Finish()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
		if d.Counts.Rows != 1_000_000 || d.Counts.Users != 5_000 {
			b.Fatalf("counts %+v", d.Counts)
		}
	}
}
