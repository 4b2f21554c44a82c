//go:build !race

package duotest

const raceEnabled = false
