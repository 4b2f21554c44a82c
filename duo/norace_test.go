//go:build !race

package duo_test

const raceEnabled = false
