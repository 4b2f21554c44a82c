// Package hostile holds only tests: a suite that drives duosync's public
// APIs (the CSV reader, the mapping, the Duo and ServiceNow clients) and
// the built binary (config files, saved plans) with broken and malicious
// input. See README.md for the table of inputs and outcomes.
package hostile
