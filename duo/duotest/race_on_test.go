//go:build race

package duotest

const raceEnabled = true
