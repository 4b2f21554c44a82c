package sync

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duosync/duosync/source"
)

// planWith makes a plan of n creates (each with an enrollment) and a desired
// state with the given rows and invalid rows.
func planWith(creates, rows, invalid int) (Plan, Desired) {
	var p Plan
	for i := range creates {
		u := fmt.Sprintf("u%d@example.com", i)
		p.Actions = append(p.Actions, Action{Kind: CreateUser, Username: u, NewUser: &UserFields{Username: u}},
			Action{Kind: Enroll, Username: u, Email: u})
	}
	d := Desired{Counts: Counts{Rows: rows, Reject: map[string]int{}}}
	for range invalid {
		d.Invalid = append(d.Invalid, source.Problem{Reason: RejectInvalidEmail})
		d.Counts.Reject[RejectInvalidEmail]++
	}
	return p, d
}

func TestGuardsAtTheirThresholds(t *testing.T) {
	tests := []struct {
		name                 string
		policy               Policy
		creates, rows, inval int
		existing             int
		trips                string // guard name, "" = passes
	}{
		{"creates at 10% passes", Policy{MaxCreates: Percent(10)}, 100, 100, 0, 1000, ""},
		{"creates one over 10% trips", Policy{MaxCreates: Percent(10)}, 101, 101, 0, 1000, "max_creates"},
		{"creates 10% rounds down", Policy{MaxCreates: Percent(10)}, 101, 101, 0, 1009, "max_creates"},
		{"creates at a count passes", Policy{MaxCreates: Count(5)}, 5, 5, 0, 0, ""},
		{"creates one over a count trips", Policy{MaxCreates: Count(5)}, 6, 6, 0, 0, "max_creates"},
		{"fresh account: 10% of 0", Policy{MaxCreates: Percent(10)}, 1, 1, 0, 0, "max_creates"},
		{"changes at the limit pass", Policy{MaxChanges: Count(10)}, 5, 5, 0, 0, ""},
		{"changes one over trip", Policy{MaxChanges: Count(9)}, 5, 5, 0, 0, "max_changes"},
		{"invalid at 5% passes", Policy{MaxInvalid: Percent(5)}, 0, 100, 5, 0, ""},
		{"invalid one over 5% trips", Policy{MaxInvalid: Percent(5)}, 0, 100, 6, 0, "max_invalid"},
		{"invalid at a count passes", Policy{MaxInvalid: Count(3)}, 0, 10, 3, 0, ""},
		{"invalid one over a count trips", Policy{MaxInvalid: Count(3)}, 0, 10, 4, 0, "max_invalid"},
		{"no limits", Policy{}, 5000, 5000, 5000, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, d := planWith(tt.creates, tt.rows, tt.inval)
			over, err := CheckGuards(p, d, tt.existing, tt.policy, false)
			if len(over) != 0 {
				t.Errorf("overridden without --force: %v", over)
			}
			if tt.trips == "" {
				if err != nil {
					t.Fatalf("tripped: %v", err)
				}
				return
			}
			var ge *GuardError
			if !errors.As(err, &ge) || ge.Guard != tt.trips {
				t.Fatalf("err = %v, want guard %s", err, tt.trips)
			}
			if !strings.Contains(err.Error(), "--force") {
				t.Errorf("message %q does not say how to override", err)
			}
			// --force passes and says what it overrode.
			over, err = CheckGuards(p, d, tt.existing, tt.policy, true)
			if err != nil || len(over) != 1 || over[0].Guard != tt.trips {
				t.Fatalf("with force: over %v err %v", over, err)
			}
			if s := GuardsOverridden(over); !strings.HasPrefix(s, tt.trips+": ") || strings.Contains(s, "--force") || GuardsOverridden(nil) != "" {
				t.Errorf("GuardsOverridden = %q", s)
			}
		})
	}
}

func TestGuardMessagesGiveTheFigures(t *testing.T) {
	p, d := planWith(2000, 2000, 0)
	_, err := CheckGuards(p, d, 1000, Policy{MaxCreates: Percent(10)}, false)
	want := "max_creates: 2,000 users to create exceeds 10% of 1,000 existing Duo users (100); use --force to override"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	_, err = CheckGuards(p, d, 1000, Policy{MaxChanges: Count(3000)}, false)
	want = "max_changes: 4,000 changes exceeds the limit of 3,000; use --force to override"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	p, d = planWith(0, 200, 11)
	_, err = CheckGuards(p, d, 0, Policy{MaxInvalid: Percent(5)}, false)
	want = "max_invalid: 11 invalid rows exceeds 5% of 200 rows read (10); use --force to override"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
