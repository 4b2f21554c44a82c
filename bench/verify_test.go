package bench

import (
	"strings"
	"testing"

	"github.com/duosync/duosync/duo/duotest"
)

func TestMinReads(t *testing.T) {
	for _, c := range []struct {
		users, needed, groups, want int
	}{
		{100_000, 10_000, 50, 1 + 100 + 1}, // issue 5: lookups beat 333 more pages
		{1_000, 100, 50, 1 + 1 + 1},        // the sanity scale
		{1_000, 5_000, 150, 1 + 3 + 2},     // paging the rest beats 50 lookups
		{200, 10, 0, 1 + 0 + 1},            // one page holds everyone; groups still read once
	} {
		if got := minReads(c.users, c.needed, c.groups); got != c.want {
			t.Errorf("minReads(%d, %d, %d) = %d, want %d", c.users, c.needed, c.groups, got, c.want)
		}
	}
	if got := minWrites(Production); got != 7_000 {
		t.Errorf("minWrites(Production) = %d, want 2,000 creates + 2,000 enrollments + 3,000 memberships", got)
	}
}

// TestVerifyFinalState checks that the end-state check fails on each way
// Duo could end up wrong, so that the sanity test and the benchmark can fail.
func TestVerifyFinalState(t *testing.T) {
	sc := Scale{NewUsers: 1, NewMemberships: 1, InSync: 1}
	scen := Scenario{InitialUsers: 2, InitialMemberships: 1, Requests: []ScenarioRequest{
		{Number: "RITM1", Username: "new@x.org", UserName: "new", Group: "G2", Kind: kindNew},
		{Number: "RITM2", Username: "a@x.org", Group: "G2", Kind: kindMembership},
		{Number: "RITM3", Username: "b@x.org", Group: "G1", Kind: kindInSync},
	}}
	good := func() duotest.State {
		return duotest.State{
			Users: []duotest.StateUser{
				{Username: "a@x.org", Groups: []string{"G2"}},
				{Username: "b@x.org", Groups: []string{"G1"}},
				{Username: "new@x.org", Aliases: []string{"new", `GLOBAL\new`}, Notes: "RITM1", Groups: []string{"G2"}},
			},
			Groups: []duotest.StateGroup{{Name: "G1", Members: 1}, {Name: "G2", Members: 2}},
			Outbox: []duotest.Enrollment{{Username: "new@x.org"}},
		}
	}
	if err := verifyFinalState(good(), scen, sc); err != nil {
		t.Fatalf("the desired state was refused: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(*duotest.State)
		want   string
	}{
		"membership missing": {func(s *duotest.State) { s.Users[0].Groups = nil; s.Groups[1].Members = 1 }, "not in group"},
		"user created twice": {func(s *duotest.State) { s.Users = append(s.Users, s.Users[2]) }, "exists twice"},
		"new user missing":   {func(s *duotest.State) { s.Users = s.Users[:2] }, "is not in Duo"},
		"email sent twice":   {func(s *duotest.State) { s.Outbox = append(s.Outbox, s.Outbox[0]) }, "enrollment emails"},
		"alias missing":      {func(s *duotest.State) { s.Users[2].Aliases = []string{"new"} }, "aliases"},
		"extra membership":   {func(s *duotest.State) { s.Groups[0].Members = 2 }, "memberships, want 3"},
	} {
		st := good()
		c.mutate(&st)
		err := verifyFinalState(st, scen, sc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestReadHWM(t *testing.T) {
	if !resetHWM() {
		t.Skip("no /proc/self/clear_refs here: peak memory falls back to MemStats.Sys")
	}
	before := readHWM()
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 { // one write per page makes it resident
		buf[i] = 1
	}
	if after := readHWM(); after < before+32<<20 {
		t.Errorf("VmHWM went from %d to %d after touching 64 MB", before, after)
	}
	_ = buf[len(buf)-1]
}
