package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/duosync/duosync/report"
	"github.com/duosync/duosync/source"
	dsync "github.com/duosync/duosync/sync"
)

// buildReport turns what the run learned (source, plan, apply result, API
// statistics, final error) into the report model. The report package knows
// nothing of the engine, so that a report can be re-rendered from its JSON.
func (r *run) buildReport(runErr error, code int) *report.Report {
	mode := report.ModePlan
	if r.mode == "apply" {
		mode = report.ModeApply
	}
	rep := report.New(r.id, mode)
	rep.StartedAt, rep.FinishedAt = r.started.UTC(), time.Now().UTC()
	rep.DuoHost, rep.Version = r.s.duoHost, strings.TrimPrefix(versionString(), "duosync ")
	rep.ExitCode, rep.ExitStatus = code, exitStatusWord(code)
	rep.Interrupted = code == exitInterrupted || code == 143
	rep.GuardOverridden = len(r.overridden) > 0
	if r.guardErr != nil {
		rep.GuardTripped = r.guardErr.Error()
	}
	if runErr != nil && !isSilent(runErr) && r.guardErr == nil {
		rep.Error = runErr.Error()
	}
	if rep.GuardOverridden {
		rep.Warnings = append(rep.Warnings, "guards overridden with --force: "+dsync.GuardsOverridden(r.overridden))
	}

	rep.Source = report.Source{Kind: r.src.kind}
	for _, f := range r.src.files {
		rep.Source.Files = append(rep.Source.Files, report.SourceFile{Path: f.Path, SHA256: f.SHA256, Rows: f.Rows, Refused: f.Refused})
	}
	if r.src.kind == "servicenow" {
		rep.Source.Instance, rep.Source.Table, rep.Source.Query = r.s.sn.instance, r.s.sn.table, r.s.sn.query
	}
	rep.Warnings = append(rep.Warnings, r.plan.Warnings...)
	if len(r.plan.Warnings) == 0 {
		rep.Warnings = append(rep.Warnings, r.desired.Warnings...)
	}

	// Counts of the source.
	counts := r.plan.Counts
	if counts.Rows == 0 {
		counts = r.desired.Counts
	}
	sm := &rep.Summary
	sm.RowsRead = counts.Rows
	sm.Invalid = counts.Invalid()
	sm.SkippedByReason = map[string]int{}
	for reason, n := range counts.Skip {
		sm.SkippedByReason[reason] = n
		sm.NotApproved += n
	}
	sm.Valid = sm.RowsRead - sm.Invalid
	sm.UsersDesired = counts.Users
	sm.InSync = r.plan.InSync
	sm.Blocked = len(r.plan.Blocked)
	sm.Conflicts = len(r.plan.Conflicts)
	sm.EnrollmentsPending = len(r.plan.Pending)

	// Action counts: what was done (apply) or would be done (plan).
	if r.result != nil {
		c := r.result.Counts
		sm.Created, sm.Updated, sm.EnrollmentsSent = c.Created, c.Updated, c.Enrolled+c.EnrollUnknown
		sm.MembershipsAdded, sm.GroupsCreated, sm.Failed = c.MembershipsAdded, c.GroupsCreated, c.Failed
	} else {
		ps := r.plan.Summary()
		sm.Created, sm.Updated, sm.EnrollmentsSent = ps.UsersToCreate, ps.UsersToUpdate, ps.Enrollments
		sm.MembershipsAdded, sm.GroupsCreated = ps.Memberships, ps.GroupsToCreate
	}
	if r.duo != nil {
		st := r.duo.Stats()
		sm.APICalls, sm.Retries, sm.RateLimited = int(st.TotalCalls), int(st.Retries), int(st.RateLimited)
	}

	r.reportRows(rep)
	for _, p := range r.plan.Invalid {
		rep.Invalid = append(rep.Invalid, report.InvalidRow{File: p.File, Line: p.Line, Column: p.Column, Reason: p.Reason, Detail: p.Detail})
	}
	if len(r.plan.Invalid) == 0 {
		for _, p := range r.desired.Invalid {
			rep.Invalid = append(rep.Invalid, report.InvalidRow{File: p.File, Line: p.Line, Column: p.Column, Reason: p.Reason, Detail: p.Detail})
		}
	}
	for _, b := range r.plan.Blocked {
		rep.Blocked = append(rep.Blocked, report.BlockedRow{Username: b.Username, DuoUserID: b.UserID, Status: b.Status, Requests: b.Requests, Detail: b.Detail})
	}
	for _, c := range r.plan.Conflicts {
		rep.Conflicts = append(rep.Conflicts, report.ConflictRow{Username: c.Username, Field: c.Field, Values: c.Values, Requests: c.Requests, Detail: c.Detail})
	}
	for _, d := range r.plan.Drift {
		rep.Drift = append(rep.Drift, report.DriftRow{Kind: d.Kind, Username: d.Username, DuoUserID: d.UserID, Group: d.Group, Field: d.Field, DuoValue: d.Have, Wanted: d.Want, Detail: d.Detail})
	}
	if r.result != nil {
		for _, a := range r.result.Actions {
			if a.Outcome != dsync.OutcomeFailed && a.Outcome != dsync.OutcomeUnknown {
				continue
			}
			rep.Failures = append(rep.Failures, report.FailureRow{
				Action: string(a.Action.Kind), Username: a.Action.Username, Group: a.Action.Group,
				Requests: a.Action.Requests, Attempts: a.Attempts, HTTPStatus: a.HTTPStatus, DuoCode: a.DuoCode,
				DuoMessage: a.DuoMessage, Error: a.Detail,
			})
		}
	}
	return rep
}

// reportRows fills one row per request: from the apply's result when there
// is one, else from the plan.
func (r *run) reportRows(rep *report.Report) {
	users := map[string]dsync.DesiredUser{}
	for _, u := range r.desired.Users {
		for _, ritm := range u.Requests {
			users[ritm] = u
		}
	}
	row := func(number, username, userID string, actions []string, outcome, detail, file string, line int) report.RequestRow {
		u := users[number]
		var groups []string // the groups this request asks for
		for _, m := range u.Memberships {
			if slices.Contains(m.Requests, number) {
				groups = append(groups, m.Group)
			}
		}
		return report.RequestRow{
			Number: number, Username: username, Requester: u.Realname, Email: u.Email, Groups: groups,
			Actions: actions, Outcome: reportOutcome(outcome, r.result != nil, actions), DuoUserID: userID,
			Detail: detail, File: file, Line: line,
		}
	}
	if r.result != nil && len(r.result.Requests) > 0 {
		for _, q := range r.result.Requests {
			rep.Requests = append(rep.Requests, row(q.Request, q.Username, q.UserID, actionWords(q.Actions, q.Groups), q.Outcome, q.Detail, q.File, q.Line))
		}
		return
	}
	for _, q := range r.plan.Requests {
		rep.Requests = append(rep.Requests, row(q.Request, q.Username, q.UserID, actionWords(q.Actions, q.Groups), q.Outcome, q.Detail, q.File, q.Line))
	}
}

// actionWords turns action kinds into words for people: "create", "enroll",
// "add MFA Users".
func actionWords(kinds []string, groups []string) []string {
	var out []string
	groupsDone := false
	for _, k := range kinds {
		switch dsync.ActionKind(k) {
		case dsync.CreateUser:
			out = append(out, "create")
		case dsync.UpdateUser:
			out = append(out, "update")
		case dsync.Enroll:
			out = append(out, "enroll")
		case dsync.CreateGroup:
			out = append(out, "create group")
		case dsync.AddMembership:
			if !groupsDone {
				groupsDone = true
				for _, g := range groups {
					out = append(out, "add "+g)
				}
				if len(groups) == 0 {
					out = append(out, "add to group")
				}
			}
		default:
			out = append(out, k)
		}
	}
	return out
}

// reportOutcome maps the engine's outcome words to the report's.
func reportOutcome(o string, applied bool, actions []string) string {
	switch o {
	case dsync.OutcomeChange:
		return report.OutcomePlanned
	case dsync.OutcomeInSync:
		return report.OutcomeInSync
	case dsync.OutcomeOK:
		if applied && len(actions) > 0 {
			return report.OutcomeApplied
		}
		return report.OutcomeInSync
	case dsync.OutcomeFailed, dsync.OutcomeUnknown, dsync.OutcomeError:
		return report.OutcomeFailed
	case dsync.OutcomeBlocked:
		return report.OutcomeBlocked
	case dsync.OutcomeConflict:
		return report.OutcomeConflict
	case dsync.OutcomeSkipped:
		return report.OutcomeSkipped
	case dsync.OutcomeInvalid:
		return report.OutcomeInvalid
	case dsync.OutcomeNotStarted:
		return report.OutcomeNotStarted
	}
	return o
}

func exitStatusWord(code int) string {
	switch code {
	case exitOK:
		return "ok"
	case exitChanges:
		return "changes pending"
	case exitPartial:
		return "partial failure"
	case exitGuard:
		return "guard tripped"
	case exitLocked:
		return "locked"
	case exitUsage:
		return "usage error"
	case exitInterrupted, 143:
		return "interrupted"
	}
	return "error"
}

// summaryCounts flattens the summary for the journal's runs table.
func summaryCounts(s report.Summary) map[string]int {
	return map[string]int{
		"rows_read": s.RowsRead, "valid": s.Valid, "invalid": s.Invalid, "skipped": s.NotApproved,
		"users_desired": s.UsersDesired, "in_sync": s.InSync, "created": s.Created, "updated": s.Updated,
		"enrollments_sent": s.EnrollmentsSent, "enrollments_pending": s.EnrollmentsPending,
		"memberships_added": s.MembershipsAdded, "groups_created": s.GroupsCreated,
		"blocked": s.Blocked, "conflicts": s.Conflicts, "failed": s.Failed,
		"api_calls": s.APICalls, "retries": s.Retries, "rate_limited": s.RateLimited,
	}
}

// combinedSHA is the SHA-256 of the source files' hashes in order: one
// fingerprint for a multi-file source.
func combinedSHA(files []source.FileInfo) string {
	if len(files) == 1 {
		return files[0].SHA256
	}
	h := sha256.New()
	for _, f := range files {
		io.WriteString(h, f.SHA256+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}
