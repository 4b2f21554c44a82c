//go:build race

package main

// raceEnabled builds the end-to-end tests' binary with the race detector
// too, when the tests themselves run with it.
const raceEnabled = true
