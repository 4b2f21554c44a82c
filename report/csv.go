package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvHeader is the CSV report's header row (documented in docs/report-schema.md).
var csvHeader = []string{
	"run_id", "mode", "number", "username", "requester", "email", "groups", "actions",
	"outcome", "duo_user_id", "detail", "file", "line",
}

// utf8BOM starts the CSV so that Excel reads it as UTF-8 (names with
// accents would otherwise come out garbled).
const utf8BOM = "\uFEFF"

// WriteCSV writes one row per request, in the order people read them (what
// needs a human first). Cells that a spreadsheet would run as a formula are
// escaped (see SafeCell). Lists (groups, actions) are joined with "; ".
func WriteCSV(w io.Writer, r *Report) error {
	if _, err := io.WriteString(w, utf8BOM); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180, and what Excel writes
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	for _, row := range sortedRequests(r.Requests) {
		line := ""
		if row.Line > 0 {
			line = strconv.Itoa(row.Line)
		}
		rec := []string{
			r.RunID, r.Mode, row.Number, row.Username, row.Requester, row.Email,
			strings.Join(row.Groups, "; "), strings.Join(row.Actions, "; "),
			row.Outcome, row.DuoUserID, row.Detail, row.File, line,
		}
		for i := range rec {
			rec[i] = SafeCell(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write CSV report row %s: %w", row.Number, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV report: %w", err)
	}
	return nil
}

// SafeCell escapes a cell that a spreadsheet would run as a formula (OWASP's
// "CSV injection"): one starting with = + - @, a tab or a carriage return
// gets a leading apostrophe, which Excel, LibreOffice and Google Sheets show
// as text. It is the same escaping ServiceNow's own exports use.
func SafeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
