package source

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrRefused is wrapped by the error ReadCSV returns when a file is not a
// usable ServiceNow export (an HTML login page, binary data, empty, header
// only, another delimiter, no ServiceNow columns, an undecodable charset).
var ErrRefused = errors.New("not a usable ServiceNow CSV export")

// Defaults for CSVOptions.
const (
	// ServiceNowExportLimit is ServiceNow's default export row cap
	// (glide.ui.export.limit): an export of exactly this many rows was
	// probably cut off.
	ServiceNowExportLimit = 10000
	// DefaultMaxFieldBytes bounds one field. ServiceNow crops strings at
	// 32,000 characters, so a bigger field means a broken file, and the
	// bound keeps a 50 MB field (or an unterminated quote) from being
	// buffered whole.
	DefaultMaxFieldBytes = 1 << 20
	// A record may hold many fields; it is bounded at this many times the
	// field limit.
	recordLimitFactor = 16
	// MaxColumns bounds the fields of any record, the header included. An
	// sc_req_item list export has at most a few hundred columns (every
	// field and some dot-walks); past that the file is not an export, and
	// csv.Reader's per-field bookkeeping would cost memory out of
	// proportion to the bytes (a million one-byte columns: ~235 MB).
	MaxColumns = 2000
	// MaxHeaderBytes bounds the header line: 2,000 labels of over 100
	// bytes each. Everything derived from the header is held for the whole
	// file, so it gets a tighter bound than a data record.
	MaxHeaderBytes = 256 << 10
)

// CSVOptions configures ReadCSV. The zero value is ready to use.
type CSVOptions struct {
	// Encoding is "" (or "auto") to detect, or "utf-8" / "windows-1252" to force.
	Encoding string
	// MaxRowLimitWarn is ServiceNow's export row limit: a file with exactly
	// that many data rows gets a warning. 0 means 10,000; negative disables.
	MaxRowLimitWarn int
	// MaxFieldBytes bounds one field (0 means 1 MiB); a record is bounded at
	// 16 times that. A longer field or record is a Problem and is skipped.
	MaxFieldBytes int
	// MaxProblems bounds the problems kept (0 means 100,000), so that a
	// file of broken rows cannot fill memory; the rest are only counted.
	MaxProblems int
	// Logger receives one debug line per file; nil discards.
	Logger *slog.Logger
}

// CSVResult is what ReadCSV found besides the records it emitted.
type CSVResult struct {
	Files    []FileInfo `json:"files"`
	Problems []Problem  `json:"problems"` // rows reported and skipped, in file order
	// MoreProblems counts the problems beyond CSVOptions.MaxProblems, not kept.
	MoreProblems int `json:"more_problems,omitempty"`
	Requests     int `json:"requests"`   // records passed to emit
	Duplicates   int `json:"duplicates"` // identical repeats of a RITM, counted once
	// Conflicts are the RITM numbers (trimmed, upper case) seen again with
	// other content. Their
	// first record was emitted before the repeat was found: the engine must
	// not apply them (each later one is also a Problem).
	Conflicts []string `json:"conflicts,omitempty"`
	Warnings  []string `json:"warnings"`
}

func (r *CSVResult) addProblem(p Problem, limit int) {
	if len(r.Problems) >= limit {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, p)
}

// Problem reasons found by the CSV reader (the engine adds its own).
const (
	ReasonFieldCount     = "wrong_field_count"
	ReasonBadQuoting     = "bad_quoting"
	ReasonFieldTooLarge  = "field_too_large"
	ReasonRecordTooLarge = "record_too_large"
	ReasonMissingNumber  = "missing_number"
	ReasonConflict       = "conflicting_duplicate"
	// ReasonRepeatedHeader is a data row that repeats the header: two
	// exports concatenated (cat a.csv b.csv), the second one's BOM and
	// header in the middle of the file.
	ReasonRepeatedHeader = "repeated_header"
)

// ReadCSV streams every record of every file matched by patterns (paths or
// globs) to emit, in file order.
//
// Row-level problems are collected in the result and those rows skipped; the
// same RITM repeated with identical content is emitted once. Every file is
// checked before the first record is emitted: a file that is not an export at
// all is refused (its FileInfo.Refused says what it looks like) and ReadCSV
// returns an error wrapping ErrRefused, without emitting anything. A file can
// still turn out unreadable midway (an unterminated quote that swallows the
// rest of it, the file changing under the reader); then ReadCSV returns an
// error after emitting earlier records. In every case a non-nil error means
// the source is broken: the caller must discard what it received.
//
// Memory does not grow with the row count, except for one small hash per
// distinct RITM kept to find duplicates.
func ReadCSV(ctx context.Context, patterns []string, opts CSVOptions, emit func(Request) error) (CSVResult, error) {
	var res CSVResult
	opts, err := opts.withDefaults()
	if err != nil {
		return res, err
	}
	paths, err := expandPatterns(patterns)
	if err != nil {
		return res, err
	}

	// Check every file first, so that a refused file stops the run before
	// anything is emitted.
	files := make([]*exportFile, 0, len(paths))
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	var refused []string
	for _, p := range paths {
		f, err := openExport(ctx, p, opts)
		if err != nil {
			return res, err
		}
		files = append(files, f)
		res.Files = append(res.Files, f.info)
		if f.info.Refused != "" {
			refused = append(refused, p+": "+f.info.Refused)
		}
		res.Warnings = append(res.Warnings, f.warnings...)
	}
	if len(refused) > 0 {
		return res, fmt.Errorf("%w: %s", ErrRefused, strings.Join(refused, "; "))
	}

	d := newDeduper()
	for i, f := range files {
		err := f.stream(ctx, i, d, &res, emit)
		res.Files[i] = f.info
		if err != nil {
			return res, err
		}
		if opts.MaxRowLimitWarn > 0 && f.info.Rows == opts.MaxRowLimitWarn {
			res.Warnings = append(res.Warnings, fmt.Sprintf(
				"%s: exactly %d data rows, ServiceNow's export row limit: the export was probably cut off; "+
					"split it (sysparm_record_count with sys_id ranges) or raise glide.csv.export.limit",
				f.info.Path, f.info.Rows))
		}
		opts.Logger.Debug("read CSV export", "file", f.info.Path, "rows", f.info.Rows,
			"encoding", f.info.Encoding, "sha256", f.info.SHA256)
	}
	if res.MoreProblems > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d more invalid rows not listed (only the first %d are kept)",
			res.MoreProblems, opts.MaxProblems))
	}
	return res, nil
}

func (o CSVOptions) withDefaults() (CSVOptions, error) {
	enc, err := normaliseEncoding(o.Encoding)
	if err != nil {
		return o, err
	}
	o.Encoding = enc
	if o.MaxRowLimitWarn == 0 {
		o.MaxRowLimitWarn = ServiceNowExportLimit
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if o.MaxProblems <= 0 {
		o.MaxProblems = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// normaliseEncoding accepts the usual spellings of the two charsets
// ServiceNow exports in.
func normaliseEncoding(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return "", nil
	case "utf-8", "utf8":
		return encUTF8, nil
	case "windows-1252", "cp1252", "win1252":
		return encWindows1252, nil
	}
	return "", fmt.Errorf("unknown CSV encoding %q: use utf-8 or windows-1252 (or leave it empty to detect)", s)
}

// expandPatterns turns paths and globs into a list of files, in the order
// given (a glob's matches sorted), each once.
func expandPatterns(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, errors.New("no CSV export given")
	}
	var paths []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		matches := []string{pat}
		if strings.ContainsAny(pat, "*?[") {
			m, err := filepath.Glob(pat)
			if err != nil {
				return nil, fmt.Errorf("CSV pattern %q: %w", pat, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("CSV pattern %q matches no file", pat)
			}
			matches = m
		}
		for _, p := range matches {
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("CSV export: %w", err)
			}
			if st.IsDir() {
				return nil, fmt.Errorf("CSV export %s is a directory (give files or a glob such as %s)",
					p, filepath.Join(p, "*.csv"))
			}
			key := p
			if abs, err := filepath.Abs(p); err == nil {
				key = abs
			}
			if !seen[key] {
				seen[key] = true
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

// deduper remembers each RITM seen, as a hash of its number and a hash of its
// content, so that a repeat can be told identical or conflicting without
// holding the rows.
type deduper struct {
	keySeed1, keySeed2, contentSeed maphash.Seed
	seen                            map[[2]uint64]seenRecord
}

type seenRecord struct {
	content    uint64
	file       int32
	line       int32 // the first occurrence's
	conflicted bool  // already listed in CSVResult.Conflicts
}

func newDeduper() *deduper {
	return &deduper{
		keySeed1:    maphash.MakeSeed(),
		keySeed2:    maphash.MakeSeed(),
		contentSeed: maphash.MakeSeed(),
		seen:        map[[2]uint64]seenRecord{},
	}
}

// fingerprint hashes a record's RITM number (the key) and its content. The
// content hash ignores column order and empty fields, so the same record
// exported with its columns in another order, or with extra empty columns,
// still matches. It only reads the seeds, so the decoder's goroutine may call it.
func (d *deduper) fingerprint(number string, names, values []string) (key [2]uint64, content uint64) {
	n := normaliseNumber(number)
	key = [2]uint64{maphash.String(d.keySeed1, n), maphash.String(d.keySeed2, n)}
	var h maphash.Hash
	h.SetSeed(d.contentSeed)
	for i, v := range values {
		if v != "" {
			h.Reset()
			h.WriteString(names[i])
			h.WriteByte(0)
			h.WriteString(v)
			content += h.Sum64()
		}
	}
	return key, content
}

// normaliseNumber is how RITM numbers are compared: trimmed, upper case.
func normaliseNumber(n string) string { return strings.ToUpper(strings.TrimSpace(n)) }

// check records a fingerprinted request and says whether it repeats an
// earlier one: identical (dup) or with other content (conflict, with the
// earlier one's place).
func (d *deduper) check(key [2]uint64, content uint64, file, line int) (dup bool, conflict *seenRecord) {
	if prev, ok := d.seen[key]; ok {
		if prev.content == content {
			return true, nil
		}
		return false, &prev
	}
	d.seen[key] = seenRecord{content: content, file: int32(file), line: int32(line)}
	return false, nil
}

func (d *deduper) markConflicted(key [2]uint64) {
	rec := d.seen[key]
	rec.conflicted = true
	d.seen[key] = rec
}

// exportFile is one input file between its check and its streaming.
type exportFile struct {
	info     FileInfo
	warnings []string
	f        *os.File
	scan     scanResult
	header   headerInfo
	opts     CSVOptions
}

func (f *exportFile) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// HasColumn reports whether the file has a column, given as a field name or
// an export label ("requested_for.email" or "Requested for.Email").
func (fi FileInfo) HasColumn(name string) bool {
	return slices.Contains(fi.Columns, CanonicalField(name))
}
