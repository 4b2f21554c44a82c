package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// WriteJSON writes the report in the versioned schema of
// docs/report-schema.md (schema_version 1), indented for people. Empty lists
// are written as [] rather than null, so consumers need no null checks.
func WriteJSON(w io.Writer, r *Report) error {
	out := *r
	if out.SchemaVersion == 0 {
		out.SchemaVersion = SchemaVersion
	}
	out.Requests = nonNil(out.Requests)
	out.Invalid = nonNil(out.Invalid)
	out.Blocked = nonNil(out.Blocked)
	out.Conflicts = nonNil(out.Conflicts)
	out.Drift = nonNil(out.Drift)
	out.Failures = nonNil(out.Failures)
	out.Warnings = nonNil(out.Warnings)
	if out.Summary.SkippedByReason == nil {
		out.Summary.SkippedByReason = map[string]int{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("write JSON report %s: %w", r.RunID, err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ReadJSON reads a report written by WriteJSON (for `duosync report RUN_ID`).
// It refuses a schema version it does not know, and reports where a
// malformed document went wrong.
func ReadJSON(rd io.Reader) (*Report, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read JSON report: %w", err)
	}
	// The version decides how to read the rest, so it is read first.
	var probe struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("read JSON report: %w", describeJSONError(data, err))
	}
	switch {
	case probe.SchemaVersion == nil:
		return nil, errors.New("read JSON report: no schema_version: not a duosync report")
	case *probe.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("read JSON report: schema_version %d is not supported (this duosync reads version %d)",
			*probe.SchemaVersion, SchemaVersion)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read JSON report: %w", describeJSONError(data, err))
	}
	return &r, nil
}

// ReadJSONFile reads a JSON report from a file.
func ReadJSONFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open report: %w", err)
	}
	defer f.Close()
	r, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// describeJSONError adds the line and column to a syntax or type error.
func describeJSONError(data []byte, err error) error {
	var offset int64
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
		if typ.Field != "" {
			err = fmt.Errorf("field %s: %w", typ.Field, err)
		}
	default:
		return err
	}
	line, col := 1, 1
	for i := int64(0); i < offset && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
