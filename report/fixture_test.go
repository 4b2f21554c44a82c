package report

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files (and docs/report.png) from the current output")

var t0 = time.Date(2026, 12, 3, 14, 5, 0, 0, time.UTC)

// sampleReport is a demo-like APPLY run with one of everything.
func sampleReport() *Report {
	r := New("20261203T140500Z-7f3a", ModeApply)
	r.StartedAt = t0
	r.FinishedAt = t0.Add(12*time.Second + 340*time.Millisecond)
	r.Source = Source{Kind: "csv", Files: []SourceFile{{
		Path: "exports/sc_req_item.csv", Rows: 14,
		SHA256: "3f2a9c1de0b74a6f8e5d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7",
	}}}
	r.DuoHost = "api-1a2b3c4d.duosecurity.com"
	r.Version = "1.0.0"
	r.ExitStatus = "partial failure"
	r.ExitCode = 3
	r.Summary = Summary{
		RowsRead: 14, Valid: 12, Invalid: 1, NotApproved: 1,
		SkippedByReason: map[string]int{"not_approved": 1},
		UsersDesired:    10, InSync: 1, Created: 7, EnrollmentsSent: 7, EnrollmentsPending: 1,
		MembershipsAdded: 9, Blocked: 1, Conflicts: 1, Failed: 1,
		APICalls: 27, Retries: 2, RateLimited: 1,
	}
	add := func(num, user, name, outcome, id, detail string, groups []string, actions ...string) {
		r.Requests = append(r.Requests, RequestRow{
			Number: num, Username: user, Requester: name, Email: user, Groups: groups, Actions: actions,
			Outcome: outcome, DuoUserID: id, Detail: detail, File: "exports/sc_req_item.csv", Line: 2 + len(r.Requests),
		})
	}
	mfa := []string{"MFA Users"}
	add("RITM0010001", "alice.nguyen@example.com", "Alice Nguyen", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA1", "", mfa, "create", "enroll", "add MFA Users")
	add("RITM0010002", "bob.okafor@example.com", "Bob Okafor", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA2", "", mfa, "create", "enroll", "add MFA Users")
	add("RITM0010003", "chen.wei@example.com", "Chen Wei", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA3", "", []string{"MFA Users", "VPN Admins"}, "create", "enroll", "add MFA Users", "add VPN Admins")
	add("RITM0010004", "dana.ruiz@example.com", "Dana Ruiz", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA4", "", mfa, "create", "enroll", "add MFA Users")
	add("RITM0010005", "emeka.obi@example.com", "Emeka Obi", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA5", "", mfa, "create", "enroll", "add MFA Users")
	add("RITM0010006", "fatima.zahra@example.com", "Fatima Zahra", OutcomeApplied, "DUAAAAAAAAAAAAAAAAA6", "", mfa, "create", "enroll", "add MFA Users")
	add("RITM0010007", "gus.larsen@example.com", "Gus Larsen", OutcomePartial, "DUAAAAAAAAAAAAAAAAA7",
		`add "Finance Approvers": Duo 40401: group not found`, []string{"MFA Users", "Finance Approvers"}, "create", "enroll", "add MFA Users", "add Finance Approvers")
	add("RITM0010008", "hana.sato@example.com", "Hana Sato", OutcomeInSync, "DUAAAAAAAAAAAAAAAAA8", "already enrolled and a member of MFA Users", mfa)
	add("RITM0010009", "ivan.petrov@example.com", "Ivan Petrov", OutcomeBlocked, "DUAAAAAAAAAAAAAAAAA9", "Duo user is locked out", mfa)
	add("RITM0010010", "jo.smith@example.com", "Jo Smith", OutcomeConflict, "", "two requests give different emails", mfa)
	add("RITM0010011", "jo.smith@example.com", "Jo Smith", OutcomeConflict, "", "two requests give different emails", mfa)
	add("RITM0010012", "kim.lee@example.com", "Kim Lee", OutcomeApplied, "DUAAAAAAAAAAAAAAAA10", "enrollment email already sent 2 days ago; not re-sent", mfa, "add MFA Users")
	add("RITM0010013", "", "Lou Marsh", OutcomeInvalid, "", `requested_for.email "lou.marsh@" is not an email address`, nil)
	add("RITM0010014", "max.berg@example.com", "Max Berg", OutcomeSkipped, "", "not approved (requested)", nil)

	r.Invalid = []InvalidRow{{File: "exports/sc_req_item.csv", Line: 14, Column: "requested_for.email", Reason: "invalid_email", Detail: `"lou.marsh@" is not an email address`}}
	r.Blocked = []BlockedRow{{Username: "ivan.petrov@example.com", DuoUserID: "DUAAAAAAAAAAAAAAAAA9", Status: "locked out", Requests: []string{"RITM0010009"}, Detail: "lockout reason: failed attempts"}}
	r.Conflicts = []ConflictRow{{Username: "jo.smith@example.com", Field: "email", Values: []string{"jo.smith@example.com", "jsmith@example.com"}, Requests: []string{"RITM0010010", "RITM0010011"}, Detail: "fix the requester's record in ServiceNow"}}
	r.Drift = []DriftRow{
		{Kind: DriftAttribute, Username: "hana.sato@example.com", DuoUserID: "DUAAAAAAAAAAAAAAAAA8", Field: "realname", DuoValue: "Hana S.", Wanted: "Hana Sato"},
		{Kind: DriftUnexplainedMember, Username: "old.contractor@example.com", DuoUserID: "DUAAAAAAAAAAAAAAAA99", Group: "VPN Admins"},
	}
	r.Failures = []FailureRow{{Action: "add_membership", Username: "gus.larsen@example.com", Group: "Finance Approvers",
		Requests: []string{"RITM0010007"}, Attempts: 1, HTTPStatus: 404, DuoCode: 40401, DuoMessage: "Resource not found",
		Error: `group "Finance Approvers" not found in Duo (create_missing_groups is off)`}}
	r.Warnings = []string{"exports/sc_req_item.csv: 1 row is not approved and was skipped"}
	return r
}

// planReport is the same requests, planned.
func planReport() *Report {
	r := sampleReport()
	r.RunID = "20261203T140000Z-plan"
	r.Mode = ModePlan
	r.ExitStatus = "changes pending"
	r.ExitCode = 2
	r.Summary.Failed = 0
	r.Summary.APICalls = 4
	r.Summary.Retries, r.Summary.RateLimited = 0, 0
	r.Failures = nil
	for i := range r.Requests {
		switch r.Requests[i].Outcome {
		case OutcomeApplied, OutcomePartial:
			r.Requests[i].Outcome = OutcomePlanned
			r.Requests[i].Detail = ""
		}
		if r.Requests[i].Outcome == OutcomePlanned && r.Requests[i].Number <= "RITM0010007" {
			r.Requests[i].DuoUserID = ""
		}
	}
	return r
}

// guardReport is a run stopped by a guard: nothing written.
func guardReport() *Report {
	r := New("20261203T150000Z-guard", ModeApply)
	r.StartedAt = t0
	r.FinishedAt = t0.Add(900 * time.Millisecond)
	r.Source = Source{Kind: "servicenow", Instance: "https://acme.service-now.com", Table: "sc_req_item", Query: "approval=approved^active=true"}
	r.DuoHost = "api-1a2b3c4d.duosecurity.com"
	r.Version = "1.0.0"
	r.ExitStatus = "guard tripped"
	r.ExitCode = 4
	r.GuardTripped = "max_creates: 4200 creations exceed 10% of 3100 existing users (310)"
	r.Summary = Summary{RowsRead: 4200, Valid: 4200, UsersDesired: 4200, APICalls: 12}
	return r
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -run %s -update to create it)", err, t.Name())
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test ./report -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
