package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/duosync/duosync/source"
	dsync "github.com/duosync/duosync/sync"
)

func runValidate(ctx context.Context, env Env, args []string) error {
	var c commonFlags
	var format string
	f := newFlagSet("validate", "duosync validate [-c FILE] [--source PATH...] [--format text|json]", env.Stdout)
	c.register(f)
	f.String(&format, "format", "", "text", "output format: text or json")
	if err := f.Parse(args); err != nil {
		return err
	}
	if format != "text" && format != "json" {
		return usageErrorf("validate: --format %q: use text or json", format)
	}
	c.sources = append(c.sources, f.Args()...)
	s, err := resolveSettings(env, f, &c, false)
	if err != nil {
		return err
	}
	if s.sourceKind != "csv" {
		return usageErrorf("validate reads CSV exports: give --source PATH")
	}
	if len(s.csvPaths) == 0 {
		return errNoSource
	}
	b, err := dsync.NewBuilder(s.mapping, s.filter)
	if err != nil {
		return usageErrorf("mapping: %v", err)
	}
	res, readErr := source.ReadCSV(ctx, s.csvPaths, source.CSVOptions{Encoding: s.encoding}, addRequest(b))
	for _, p := range res.Problems {
		b.AddProblem(p)
	}
	d := b.Finish()
	out := validateOutput(res, d)
	if format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printValidate(env, out, readErr)
	}
	switch {
	case exitCode(readErr) == exitUsage:
		return readErr
	case readErr != nil:
		// The source cannot be read: a usage-level error, since nothing in it can be trusted.
		if errors.Is(readErr, source.ErrRefused) || format == "json" {
			return withCode(exitUsage, silentOr(format == "text", readErr))
		}
		return withCode(exitUsage, readErr)
	case len(out.Invalid) > 0:
		return withCode(exitError, silentError(fmt.Sprintf("%d invalid rows", len(out.Invalid))))
	}
	return nil
}

// silentOr keeps err silent when it was already printed.
func silentOr(printed bool, err error) error {
	if printed {
		return silentError(err.Error())
	}
	return err
}

// validateJSON is the shape DESIGN.md gives for `validate --format json`.
type validateJSON struct {
	Files    []validateFile   `json:"files"`
	Requests validateRequests `json:"requests"`
	Invalid  []source.Problem `json:"invalid"`
	Users    int              `json:"users"`
	Members  int              `json:"memberships"`
	Warnings []string         `json:"warnings"`
}

type validateFile struct {
	Path     string  `json:"path"`
	Rows     int     `json:"rows"`
	Encoding string  `json:"encoding"`
	Refused  *string `json:"refused"`
}

type validateRequests struct {
	Provision int            `json:"provision"`
	Skip      map[string]int `json:"skip"`
	Reject    map[string]int `json:"reject"`
}

func validateOutput(res source.CSVResult, d dsync.Desired) validateJSON {
	out := validateJSON{
		Files:    []validateFile{},
		Requests: validateRequests{Provision: d.Counts.Provision, Skip: nonNil(d.Counts.Skip), Reject: nonNil(d.Counts.Reject)},
		Invalid:  d.Invalid,
		Users:    d.Counts.Users,
		Members:  d.Counts.Memberships,
		Warnings: append(append([]string{}, res.Warnings...), d.Warnings...),
	}
	if out.Invalid == nil {
		out.Invalid = []source.Problem{}
	}
	for _, f := range res.Files {
		vf := validateFile{Path: f.Path, Rows: f.Rows, Encoding: f.Encoding}
		if f.Refused != "" {
			r := f.Refused
			vf.Refused = &r
		}
		out.Files = append(out.Files, vf)
	}
	return out
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func printValidate(env Env, v validateJSON, readErr error) {
	w := env.Stdout
	for _, f := range v.Files {
		if f.Refused != nil {
			fmt.Fprintf(w, "%s: REFUSED: %s\n", f.Path, *f.Refused)
			continue
		}
		fmt.Fprintf(w, "%s: %d rows, %s\n", f.Path, f.Rows, f.Encoding)
	}
	if readErr != nil {
		fmt.Fprintf(w, "\nThe source cannot be used: %v\n", readErr)
		return
	}
	for _, p := range v.Invalid {
		fmt.Fprintf(w, "%s:%d: %s: %s (%s)\n", p.File, p.Line, p.Column, p.Detail, p.Reason)
	}
	for _, warn := range v.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintf(w, "\n%d requests to provision for %d users (%d memberships)", v.Requests.Provision, v.Users, v.Members)
	if len(v.Requests.Skip) > 0 {
		fmt.Fprintf(w, "; skipped: %s", countList(v.Requests.Skip))
	}
	if len(v.Requests.Reject) > 0 {
		fmt.Fprintf(w, "; rejected: %s", countList(v.Requests.Reject))
	}
	fmt.Fprintln(w, ".")
	if len(v.Invalid) == 0 {
		fmt.Fprintln(w, "All rows are valid.")
	} else {
		fmt.Fprintf(w, "%s (reported above, and skipped by plan and apply).\n", plural(len(v.Invalid), "invalid row", "invalid rows"))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", m[k], k)
	}
	return s
}
