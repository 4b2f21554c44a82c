// Package duosync holds the files embedded in the binary: the sample
// ServiceNow export that `duosync demo` runs on.
package duosync

import _ "embed"

// SampleCSV is sample.csv: a realistic ServiceNow sc_req_item list export.
//
//go:embed sample.csv
var SampleCSV []byte
