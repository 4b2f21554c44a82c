package source

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gocarina/gocsv"
	"golang.org/x/text/encoding/charmap"
)

// openExport checks one file before any record is emitted: its bytes (hash,
// binary, charset), what it looks like, and its header. A file that is no
// export comes back with info.Refused set; only I/O failures are errors.
func openExport(ctx context.Context, path string, opts CSVOptions) (*exportFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open CSV export: %w", err)
	}
	ef := &exportFile{f: f, opts: opts, info: FileInfo{Path: path}}
	refuse := func(why string) (*exportFile, error) {
		ef.info.Refused = why
		ef.close()
		return ef, nil
	}
	// The line endings are judged first, from the header line (bounded, so
	// the peek is too), as every later step counts lines.
	peek := make([]byte, min(MaxHeaderBytes, opts.MaxFieldBytes*recordLimitFactor)+len(utf8BOM)+2)
	n, err := f.ReadAt(peek, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	crOnly := crLineEndings(peek[:n])
	ef.scan, err = scanFile(ctx, f, crOnly)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if crOnly {
		ef.warnings = append(ef.warnings, path+": CR-only line endings (classic Mac OS, as Excel for Mac's "+
			"\"CSV (Macintosh)\" writes them): read with each CR as a line break; the file was re-saved "+
			"after ServiceNow exported it, so check that the spreadsheet did not alter values")
	}
	ef.info.SHA256 = ef.scan.sha256
	if why := looksLike(ef.scan); why != "" {
		return refuse(why)
	}
	enc, why, err := chooseEncoding(ctx, f, ef.scan, opts.Encoding)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if why != "" {
		return refuse(why)
	}
	ef.info.Encoding = enc
	if l := ef.scan.unclosedQuote; l > 0 {
		return refuse(fmt.Sprintf("a quoted field opened at line %d is never closed: lines %d to %d (the end of the file) "+
			"cannot be read as records", l, l, ef.scan.lastLine))
	}

	cr, lim, err := ef.records(nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	raw, err := cr.Read()
	if c, wasCut := lim.takeCut(recordLine(cr, err)); wasCut {
		// refused before anything is built from the header: the memory
		// spent is bounded by the limits, not by the line
		switch {
		case c.fields:
			return refuse(fmt.Sprintf("the first line has more than %d columns: not the header of a ServiceNow export "+
				"(an sc_req_item export has at most a few hundred)", MaxColumns))
		case c.record:
			return refuse(fmt.Sprintf("the first line is longer than %d bytes: not the header of a CSV export", lim.headerLimit))
		default:
			return refuse(fmt.Sprintf("column %d of the first line is longer than %d bytes: not the header of a CSV export",
				c.field+1, lim.fieldLimit))
		}
	}
	if err == io.EOF {
		return refuse("an empty file (no header line)")
	}
	if err != nil {
		return refuse("the header line is not valid CSV: " + csvErrorText(err))
	}
	hdr, why, warnings := checkHeader(raw)
	if why != "" {
		return refuse(why)
	}
	ef.header = hdr
	ef.info.Columns = hdr.names
	for _, w := range warnings {
		ef.warnings = append(ef.warnings, path+": "+w)
	}
	// Header only? Any further record, even a broken one, is data.
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return refuse("header only: the export has no data rows")
		}
		if err != nil || !allEmpty(rec) {
			break
		}
	}
	return ef, nil
}

// records opens a fresh reader of the file's records: BOM skipped, decoded
// to UTF-8, bounded by a limiter. The raw bytes also go to tee, if not nil.
func (f *exportFile) records(tee io.Writer) (*csv.Reader, *limiter, error) {
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", f.info.Path, err)
	}
	var r io.Reader = f.f
	if tee != nil {
		r = io.TeeReader(r, tee)
	}
	r = bufio.NewReaderSize(r, 64<<10)
	if f.scan.crOnly {
		// before decoding: CR and LF are the same bytes in both charsets
		r = newCRToLF(r)
	}
	switch f.info.Encoding {
	case encUTF8BOM:
		if _, err := io.CopyN(io.Discard, r, int64(len(utf8BOM))); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", f.info.Path, err)
		}
	case encWindows1252:
		r = charmap.Windows1252.NewDecoder().Reader(r)
	}
	lim := newLimiter(r, f.opts.MaxFieldBytes, f.opts.MaxFieldBytes*recordLimitFactor).
		withHeader(MaxHeaderBytes).withMaxFields(MaxColumns)
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true
	// FieldsPerRecord stays 0: the header fixes the width and csv.Reader
	// reports any other width as ErrFieldCount, with the record.
	return cr, lim, nil
}

// headerInfo is a file's header translated to ServiceNow field names.
type headerInfo struct {
	names   []string // field names of the columns kept, in file order
	keep    []int    // for each kept column, its index in the raw record
	rawName []string // for each raw column, a name for messages
	field   []string // for each raw column, its field name ("" when unnamed)
}

// knownColumns are sc_req_item fields (and dot-walk roots) by which a file is
// recognised as a ServiceNow export.
var knownColumns = map[string]bool{
	"number": true, "sys_id": true, "approval": true, "state": true, "stage": true,
	"cat_item": true, "active": true, "requested_for": true, "request": true, "opened_by": true,
	"short_description": true, "description": true, "quantity": true, "price": true,
	"sys_updated_on": true, "sys_created_on": true, "sys_updated_by": true, "sys_created_by": true,
	"opened_at": true, "closed_at": true, "due_date": true, "assignment_group": true,
	"assigned_to": true, "approval_set": true, "variables": true, "priority": true,
}

func knownColumn(name string) bool {
	root, _, _ := strings.Cut(name, ".")
	return knownColumns[root]
}

// checkHeader translates the header row and says why it is not an export's
// header, if it is not.
func checkHeader(raw []string) (h headerInfo, refusal string, warnings []string) {
	h, refusal, warnings = translateHeader(raw)
	if refusal == "" {
		return h, "", warnings
	}
	// A header that does not work out and holds more semicolons (or tabs)
	// than commas is most likely another delimiter (Excel in a locale that
	// uses ';'), even when a label happened to hold a comma.
	line := strings.Join(raw, ",")
	switch {
	case strings.Count(line, ";") >= len(raw):
		return h, fmt.Sprintf("a semicolon-delimited file (header %q), not ServiceNow's comma-delimited export; "+
			"re-export it, or save it from Excel as \"CSV (Comma delimited)\"", clip(line, 100)), nil
	case strings.Count(line, "\t") >= len(raw):
		return h, fmt.Sprintf("a tab-delimited file (header %q), not ServiceNow's comma-delimited export", clip(line, 100)), nil
	}
	return h, refusal, nil
}

func translateHeader(raw []string) (h headerInfo, refusal string, warnings []string) {
	seen := map[string]int{}
	known := 0
	var unnamed []string
	for i, label := range raw {
		name := CanonicalField(label)
		h.field = append(h.field, name)
		if name == "" {
			h.rawName = append(h.rawName, fmt.Sprintf("column %d", i+1))
			unnamed = append(unnamed, itoa(i+1))
			continue
		}
		h.rawName = append(h.rawName, name)
		if j, dup := seen[name]; dup {
			return h, fmt.Sprintf("column %s appears twice (columns %d and %d): which one to use is ambiguous", name, j+1, i+1), nil
		}
		seen[name] = i
		if knownColumn(name) {
			known++
		}
		h.names = append(h.names, name)
		h.keep = append(h.keep, i)
	}
	found := clip(strings.Join(h.names, ", "), 200)
	if known == 0 {
		return h, fmt.Sprintf("no recognisable ServiceNow columns (found: %s); expected field names such as "+
			"number, requested_for.email or export labels such as Number, Requested for.Email", found), nil
	}
	if _, ok := seen["number"]; !ok {
		return h, fmt.Sprintf("missing the required column number (the RITM number); found: %s", found), nil
	}
	if len(unnamed) > 0 {
		warnings = append(warnings, fmt.Sprintf("column %s has no header; its values are ignored", strings.Join(unnamed, ", ")))
	}
	return h, "", warnings
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func allEmpty(rec []string) bool {
	for _, v := range rec {
		if v != "" {
			return false
		}
	}
	return true
}

// unescapeFormula undoes ServiceNow's formula escaping
// (glide.export.escape_formulas): a ' put before a value starting with
// = + - @ so that spreadsheets do not run it.
func unescapeFormula(s string) string {
	if len(s) >= 2 && s[0] == '\'' {
		switch s[1] {
		case '=', '+', '-', '@':
			return s[1:]
		}
	}
	return s
}

// recordLine is the first line of the record csv.Reader just returned with
// err (0 when it returned none).
func recordLine(cr *csv.Reader, err error) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.StartLine
	}
	if err != nil {
		return 0
	}
	line, _ := cr.FieldPos(0)
	return line
}

func csvErrorText(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%v at line %d, character %d", pe.Err, pe.Line, pe.Column)
	}
	return err.Error()
}

// exportRow is what gocsv decodes each record into. An export's columns are
// not known in advance, so instead of tagged fields it implements
// gocsv.TypeUnmarshalCSVWithFields, which gocsv calls with each column's
// header and value.
type exportRow struct {
	// Number carries a csv tag only because gocsv refuses a struct without
	// any; with UnmarshalCSVWithFields every value, this one too, goes to fields.
	Number string `csv:"number"`
	fields map[string]string
}

func (r *exportRow) UnmarshalCSVWithFields(key, value string) error {
	if r.fields == nil {
		r.fields = make(map[string]string)
	}
	r.fields[key] = value
	return nil
}

// recordDecoder is the gocsv.SimpleDecoder that feeds gocsv. gocsv knows
// nothing of line numbers, broken rows or label headers, so the decoder does
// that part: it hands gocsv the translated header, then each good record
// projected onto it with formula escaping undone, and for a broken record an
// empty stand-in row. gocsv reads in its own goroutine, ahead of the
// consumer, so what it cannot carry (the record's line, its problem, its
// fingerprint) goes to the consumer through a queue, one entry per row, in
// order.
type recordDecoder struct {
	csv  *csv.Reader
	lim  *limiter
	hdr  headerInfo
	path string
	dd   *deduper
	// numberCol is the index of "number" in the projected row
	numberCol int

	headerSent bool
	row        []string // reused: gocsv copies the values into the row's map before asking for the next
	blank      []string
	stop       atomic.Bool
	refusal    string // set when the file turns out unreadable midway

	mu    sync.Mutex
	queue []rowMeta
}

type rowMeta struct {
	line    int
	problem *Problem
	number  string
	key     [2]uint64 // the deduper's fingerprint, computed on gocsv's side
	content uint64
}

var errStopped = errors.New("stopped")

func (d *recordDecoder) GetCSVRows() ([][]string, error) {
	return nil, errors.New("recordDecoder streams: use GetCSVRow")
}

func (d *recordDecoder) GetCSVRow() ([]string, error) {
	if !d.headerSent {
		d.headerSent = true
		return d.hdr.names, nil
	}
	for {
		if d.stop.Load() {
			return nil, errStopped
		}
		rec, err := d.csv.Read()
		if err == io.EOF {
			return nil, io.EOF
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return nil, err // an I/O error
		}
		line := recordLine(d.csv, err)
		if c, ok := d.lim.takeCut(line); ok {
			return d.problem(line, d.cutProblem(line, c))
		}
		if err != nil {
			if pe.Err == csv.ErrFieldCount {
				if allEmpty(rec) {
					continue
				}
				return d.problem(line, Problem{Reason: ReasonFieldCount, Detail: fmt.Sprintf(
					"the record has %d fields, the header has %d; skipped", len(rec), len(d.hdr.rawName))})
			}
			if start, ok := d.lim.unterminated(); ok && start == pe.StartLine && pe.Line > pe.StartLine {
				d.refusal = fmt.Sprintf("a quoted field opened at line %d is never closed: lines %d to %d (the end of the file) "+
					"cannot be read as records", start, start, pe.Line)
				return nil, fmt.Errorf("%w: %s: %s", ErrRefused, d.path, d.refusal)
			}
			return d.problem(line, Problem{Reason: ReasonBadQuoting, Detail: "broken quoting: " + csvErrorText(err) + "; skipped"})
		}
		if allEmpty(rec) {
			continue // a line of bare commas, as spreadsheets leave at the end
		}
		if same, ok := d.headerRow(rec); ok {
			if !same {
				// the rows after it follow another layout: read with this
				// file's header they would put values in the wrong fields
				d.refusal = fmt.Sprintf("line %d is the header of another export, with other columns than line 1's: "+
					"two different exports concatenated? The rows after it cannot be read with the first header; "+
					"give the exports as separate files", line)
				return nil, fmt.Errorf("%w: %s: %s", ErrRefused, d.path, d.refusal)
			}
			return d.problem(line, Problem{Reason: ReasonRepeatedHeader, Detail: fmt.Sprintf(
				"a second header row at line %d: two exports concatenated? skipped; the rows after it are read", line)})
		}
		for i, idx := range d.hdr.keep {
			d.row[i] = unescapeFormula(rec[idx])
		}
		m := rowMeta{line: line, number: d.row[d.numberCol]}
		m.key, m.content = d.dd.fingerprint(m.number, d.hdr.names, d.row)
		d.push(m)
		return d.row, nil
	}
}

// headerRow reports whether rec is a header row (ok): its number column
// holds the label of the number column, which no RITM number is. same says
// whether it names the same columns as the file's header, compared as
// field names (labels canonicalised, a BOM dropped), so that a second export
// with labels instead of field names still matches.
func (d *recordDecoder) headerRow(rec []string) (same, ok bool) {
	// what CanonicalField maps to "number", without its allocations, as
	// this runs on every row
	col := d.hdr.keep[d.numberCol]
	if !strings.EqualFold(strings.TrimSpace(stripBOM(rec[col])), "number") {
		return false, false
	}
	for i, v := range rec {
		if CanonicalField(stripBOM(v)) != d.hdr.field[i] {
			return false, true
		}
	}
	return true, true
}

// stripBOM drops a byte-order mark at the start of a field: the one of a
// second export appended to the first, as UTF-8 or as a Windows-1252 file
// shows it ("ï»¿").
func stripBOM(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	return strings.TrimPrefix(s, "\u00ef\u00bb\u00bf")
}

func (d *recordDecoder) cutProblem(line int, c cut) Problem {
	if c.fields {
		return Problem{Reason: ReasonFieldCount, Detail: fmt.Sprintf(
			"the record has more than %d fields, the header has %d; skipped", d.lim.maxFields, len(d.hdr.rawName))}
	}
	if c.record {
		return Problem{Reason: ReasonRecordTooLarge, Detail: fmt.Sprintf(
			"the record is larger than %d bytes; skipped", d.lim.recLimit)}
	}
	col := fmt.Sprintf("column %d", c.field+1)
	if c.field < len(d.hdr.rawName) {
		col = d.hdr.rawName[c.field]
	}
	return Problem{Column: col, Reason: ReasonFieldTooLarge, Detail: fmt.Sprintf(
		"the field is larger than %d bytes; skipped", d.lim.fieldLimit)}
}

func (d *recordDecoder) problem(line int, p Problem) ([]string, error) {
	p.File, p.Line = d.path, line
	d.push(rowMeta{line: line, problem: &p})
	return d.blank, nil
}

func (d *recordDecoder) push(m rowMeta) {
	d.mu.Lock()
	d.queue = append(d.queue, m)
	d.mu.Unlock()
}

func (d *recordDecoder) pop() rowMeta {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.queue[0]
	d.queue = d.queue[1:]
	return m
}

// stream reads the file's records through gocsv and passes each new request
// to emit.
func (f *exportFile) stream(ctx context.Context, fileIndex int, dd *deduper, res *CSVResult, emit func(Request) error) error {
	path := f.info.Path
	// The file is read twice (checked, then streamed): hashing it again
	// proves both reads saw the same bytes.
	h := sha256.New()
	cr, lim, err := f.records(h)
	if err != nil {
		return err
	}
	if _, err := cr.Read(); err != nil { // the header, checked already
		return fmt.Errorf("read %s: header: %w", path, err)
	}
	dec := &recordDecoder{
		csv: cr, lim: lim, hdr: f.header, path: path, dd: dd,
		numberCol: slices.Index(f.header.names, "number"),
		row:       make([]string, len(f.header.names)),
		blank:     make([]string, len(f.header.names)),
	}
	// A buffered channel lets gocsv's goroutine run ahead instead of handing
	// over one row at a time; memory stays bounded by the buffer.
	rows := make(chan exportRow, 256)
	done := make(chan error, 1)
	go func() { done <- gocsv.UnmarshalDecoderToChan(dec, rows) }()
	finished := false
	defer func() {
		if !finished {
			// Stop gocsv's goroutine (on an early return, or a panic in
			// emit): the decoder refuses further rows, and the channel is
			// drained until gocsv closes it.
			dec.stop.Store(true)
			for range rows {
			}
			<-done
		}
	}()

	var loopErr error
	for row := range rows {
		meta := dec.pop()
		f.info.Rows++
		if f.info.Rows%1024 == 0 {
			if err := ctx.Err(); err != nil {
				loopErr = err
				break
			}
		}
		if meta.problem != nil {
			res.addProblem(*meta.problem, f.opts.MaxProblems)
			continue
		}
		number := meta.number
		if strings.TrimSpace(number) == "" {
			res.addProblem(Problem{File: path, Line: meta.line, Column: "number",
				Reason: ReasonMissingNumber, Detail: "the RITM number is empty; skipped"}, f.opts.MaxProblems)
			continue
		}
		dup, prev := dd.check(meta.key, meta.content, fileIndex, meta.line)
		if dup {
			res.Duplicates++
			continue
		}
		if prev != nil {
			res.addProblem(Problem{File: path, Line: meta.line, Column: "number",
				Reason: ReasonConflict, Detail: fmt.Sprintf(
					"conflicting duplicate: %s is also at %s:%d with different content; skipped, and the RITM is reported as a conflict",
					number, res.Files[prev.file].Path, prev.line)}, f.opts.MaxProblems)
			if !prev.conflicted {
				res.Conflicts = append(res.Conflicts, normaliseNumber(number))
				dd.markConflicted(meta.key)
			}
			continue
		}
		if err := emit(Request{Fields: row.fields, Origin: Origin{File: path, Line: meta.line}}); err != nil {
			loopErr = err
			break
		}
		res.Requests++
	}
	if loopErr != nil {
		return loopErr
	}
	err = <-done
	finished = true
	if err != nil {
		if dec.refusal != "" {
			f.info.Refused = dec.refusal
			return err
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != f.info.SHA256 {
		f.info.Refused = "the file changed while it was being read"
		return fmt.Errorf("%w: %s: %s", ErrRefused, path, f.info.Refused)
	}
	return nil
}
