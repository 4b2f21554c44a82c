// Package source reads approved ServiceNow requested items (RITMs) from a CSV
// list export or, through source/servicenow, from the Table API.
//
// A source only parses: it turns rows into Requests keyed by ServiceNow field
// name and reports rows it cannot read. Deciding what a request means for Duo
// (mapping, approval filter, validation of emails and groups) is the engine's
// job, in package sync.
package source

// Request is one sc_req_item record, as a source read it.
type Request struct {
	// Fields holds every column by its ServiceNow field name
	// ("number", "requested_for.email", "variables.duo_group", ...).
	// Label headers ("Requested for.Email") are translated to field names by
	// the reader, values are display or raw values as the source gave them,
	// with ServiceNow's formula escaping already undone.
	Fields map[string]string
	// Origin says where the record came from, for error messages and reports.
	Origin Origin
}

// Origin locates a record: a file and line for CSV, an instance for the Table API.
type Origin struct {
	File string // path of the export, or the instance URL
	Line int    // 1-based line of the record's first line in the file; 0 for the Table API
}

// Get returns the value of a field by name ("" when absent).
func (r Request) Get(field string) string { return r.Fields[field] }

// Number is the RITM number, e.g. RITM0010001.
func (r Request) Number() string { return r.Fields["number"] }

// SysID is the record's sys_id (may be empty in exports without it).
func (r Request) SysID() string { return r.Fields["sys_id"] }

// Problem is one invalid row or field, reported and skipped; it never stops
// the other rows.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column string `json:"column"` // the field name, "" when the whole row is at fault
	Reason string `json:"reason"` // a short stable code: "invalid_email", "missing_username", ...
	Detail string `json:"detail"` // a sentence for a person
}

func (p Problem) Error() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + itoa(p.Line)
	}
	if p.Column != "" {
		s += ": " + p.Column
	}
	return s + ": " + p.Detail
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// FileInfo describes one input file after reading it.
type FileInfo struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Rows     int    `json:"rows"`     // data rows read (header excluded)
	Encoding string `json:"encoding"` // "utf-8", "utf-8-bom", "windows-1252"
	// Refused is non-empty when the file was rejected as a whole (not an
	// export: an HTML login page, binary data, empty, header only, ...).
	Refused string `json:"refused"`
	// Columns are the file's columns as field names, in file order, so that
	// the engine can check that the columns its mapping needs are there.
	Columns []string `json:"columns,omitempty"`
}
