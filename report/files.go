package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Paths are the files WriteFiles wrote.
type Paths struct {
	Text, CSV, JSON, HTML string
}

// runIDPattern keeps a run id usable as a file name: no separators, no
// leading dot, nothing a shell or a mail client would trip on.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// PathsFor returns where WriteFiles puts the report of runID in dir.
func PathsFor(dir, runID string) (Paths, error) {
	if !runIDPattern.MatchString(runID) {
		return Paths{}, fmt.Errorf("report file name: run id %q: use letters, digits, '.', '_' and '-' only", runID)
	}
	base := filepath.Join(dir, runID)
	return Paths{Text: base + ".txt", CSV: base + ".csv", JSON: base + ".json", HTML: base + ".html"}, nil
}

// WriteFiles writes <dir>/<runid>.{txt,csv,json,html}. Each file is written
// to a temporary file and renamed into place, so a reader (or a crash) never
// sees half a report; files are 0600 in a directory created 0700, since
// reports name people. It can be called again after an email attempt to
// record its outcome: the CSV stays byte for byte the same.
func WriteFiles(dir string, r *Report) (Paths, error) {
	p, err := PathsFor(dir, r.RunID)
	if err != nil {
		return Paths{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Paths{}, fmt.Errorf("create report directory: %w", err)
	}
	renderers := []struct {
		path   string
		render func(*bytes.Buffer, *Report) error
	}{
		// JSON first: it is the record the others can be re-rendered from.
		{p.JSON, func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
		{p.CSV, func(b *bytes.Buffer, r *Report) error { return WriteCSV(b, r) }},
		{p.Text, func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{p.HTML, func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }},
	}
	for _, f := range renderers {
		var buf bytes.Buffer
		if err := f.render(&buf, r); err != nil {
			return Paths{}, err
		}
		if err := writeFileAtomic(f.path, buf.Bytes()); err != nil {
			return Paths{}, err
		}
	}
	return p, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced before the rename so the rename never exposes an empty
// file after a power loss.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; Chmod makes it independent of that detail.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
