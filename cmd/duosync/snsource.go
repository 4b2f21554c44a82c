package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/duosync/duosync/journal"
	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
	dsync "github.com/duosync/duosync/sync"
)

// readServiceNow reads approved requests through the Table API. With
// source.servicenow.incremental, only records updated since the last
// successful apply are read (the journal keeps the watermark).
func (r *run) readServiceNow(ctx context.Context, b *dsync.Builder) error {
	sn := r.s.sn
	cfg := servicenow.Config{
		Instance: sn.instance, User: sn.user, Password: sn.password,
		ClientID: sn.clientID, ClientSecret: sn.clientSecret,
		Table: sn.table, Query: sn.query, GroupVariable: sn.groupVariable, PageSize: sn.pageSize,
		CAFile: sn.caFile, Logger: r.log,
	}
	if sn.incremental {
		wm, err := r.journal.Watermark(ctx, r.watermarkKey())
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		cfg.UpdatedSince = wm
	}
	c, err := servicenow.New(cfg)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("servicenow: %w", err))
	}
	r.sn = c
	r.sysIDs = map[string]string{}
	add := addRequest(b)
	info, err := c.Fetch(ctx, func(req source.Request) error {
		r.sysIDs[req.Number()] = req.SysID()
		return add(req)
	})
	r.snFetch = info
	query := c.Query()
	sum := sha256.Sum256([]byte(c.Instance() + "\n" + query))
	r.src = sourceSummary{kind: "servicenow", describe: c.Instance() + " " + r.s.sn.tableName() + "?" + query, sha256: hex.EncodeToString(sum[:])}
	if err != nil {
		return fmt.Errorf("read ServiceNow: %w", err)
	}
	return nil
}

func (s snSettings) tableName() string {
	if s.table == "" {
		return "sc_req_item"
	}
	return s.table
}

func (r *run) watermarkKey() string {
	return "servicenow " + r.s.sn.instance + " " + r.s.sn.tableName() + " " + r.s.sn.query
}

// writeBack adds a work note to each processed RITM saying what duosync did
// or why it could not. The journal remembers each note written, so the same
// outcome is never noted twice across runs; a failed write-back is reported
// and retried by the next run, and never hides or undoes the Duo work.
func (r *run) writeBack(ctx context.Context) error {
	if r.sn == nil {
		return nil
	}
	if !r.s.sn.workNotes && r.s.sn.closeState == "" {
		return r.saveWatermark(ctx)
	}
	notes := r.notes()
	// Notes that failed in earlier runs for requests this run did not read
	// (an incremental run) are retried too.
	pending, err := r.journal.PendingWriteBacks(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	here := map[string]bool{}
	for _, n := range notes {
		here[n.sysID] = true
	}
	for _, wb := range pending {
		if !here[wb.SysID] {
			here[wb.SysID] = true
			notes = append(notes, workNote{sysID: wb.SysID, number: wb.Number, text: wb.Note, key: wb.OutcomeKey, success: wb.OutcomeKey == "done"})
		}
	}
	failed := 0
	for _, n := range notes {
		done, err := r.journal.WriteBackDone(ctx, n.sysID, n.key)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if done {
			continue
		}
		closeState := ""
		if n.success {
			closeState = r.s.sn.closeState
		}
		note := n.text
		if !r.s.sn.workNotes {
			note = ""
		}
		werr := r.sn.WriteBack(ctx, n.sysID, note, closeState)
		wb := journal.WriteBack{SysID: n.sysID, Number: n.number, OutcomeKey: n.key, Note: n.text, RunID: r.id, Result: "ok"}
		switch {
		case servicenow.IsOutcomeUnknown(werr):
			// The PATCH may have landed: count it as written, so that the note
			// is never doubled; the report says so.
			wb.Error = "outcome unknown, assumed written: " + werr.Error()
			r.log.Warn("write-back to ServiceNow: outcome unknown; not repeated", "request", n.number, "err", werr)
		case werr != nil:
			failed++
			wb.Result, wb.Error = "failed", werr.Error()
			r.log.Error("write-back to ServiceNow", "request", n.number, "err", werr)
		}
		if err := r.journal.RecordWriteBack(ctx, wb); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	if failed > 0 {
		r.desired.Warnings = append(r.desired.Warnings, fmt.Sprintf("%d ServiceNow write-backs failed; the next run retries them", failed))
		return nil
	}
	return r.saveWatermark(ctx)
}

// saveWatermark moves the incremental watermark after a clean apply only, so
// that a failed request is read again next time.
func (r *run) saveWatermark(ctx context.Context) error {
	if !r.s.sn.incremental || r.snFetch.MaxUpdated == "" || (r.result != nil && r.result.Partial()) {
		return nil
	}
	return r.journal.SetWatermark(ctx, r.watermarkKey(), r.snFetch.MaxUpdated, r.id)
}

type workNote struct {
	sysID, number, text, key string
	success                  bool
}

// notes composes the work note of each request that duosync served or
// could not serve (requests skipped as not approved get none).
func (r *run) notes() []workNote {
	type row struct {
		number, username, outcome, detail string
		actions                           []string
	}
	var rows []row
	if r.result != nil {
		for _, q := range r.result.Requests {
			rows = append(rows, row{q.Request, q.Username, q.Outcome, q.Detail, q.Actions})
		}
	} else {
		for _, q := range r.plan.Requests {
			rows = append(rows, row{q.Request, q.Username, q.Outcome, q.Detail, nil})
		}
	}
	groups := map[string][]string{}
	for _, u := range r.desired.Users {
		for _, ritm := range u.Requests {
			for _, m := range u.Memberships {
				groups[ritm] = append(groups[ritm], m.Group)
			}
		}
	}
	var out []workNote
	for _, q := range rows {
		sysID := r.sysIDs[q.number]
		if sysID == "" {
			continue
		}
		n := workNote{sysID: sysID, number: q.number}
		switch q.outcome {
		case dsync.OutcomeOK, dsync.OutcomeInSync:
			n.success, n.key = true, "done"
			n.text = "Duo: " + doneSentence(q.actions, groups[q.number], q.username)
		case dsync.OutcomeFailed, dsync.OutcomeUnknown, dsync.OutcomeError, dsync.OutcomeBlocked, dsync.OutcomeConflict, dsync.OutcomeInvalid:
			n.text = fmt.Sprintf("Duo: could not provision %s (%s): %s. IT has been notified in the duosync report.", q.username, q.outcome, q.detail)
			sum := sha256.Sum256([]byte(q.outcome + "\n" + q.detail))
			n.key = q.outcome + ":" + hex.EncodeToString(sum[:8])
		default:
			continue // skipped, not started: nothing to say yet
		}
		out = append(out, n)
	}
	return out
}

func doneSentence(kinds []string, groups []string, username string) string {
	var parts []string
	for _, k := range kinds {
		switch dsync.ActionKind(k) {
		case dsync.CreateUser:
			parts = append(parts, "user "+username+" created")
		case dsync.UpdateUser:
			parts = append(parts, "user "+username+" updated")
		case dsync.Enroll:
			parts = append(parts, "enrollment email sent")
		}
	}
	if len(groups) > 0 {
		parts = append(parts, "member of "+strings.Join(groups, ", "))
	}
	if len(parts) == 0 {
		return "user " + username + " is provisioned; nothing needed changing."
	}
	return strings.Join(parts, ", ") + "."
}
