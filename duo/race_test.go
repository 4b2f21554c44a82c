//go:build race

package duo_test

// raceEnabled scales the heaviest emulator tests down under -race, where
// JSON decoding is several times slower; the full scale runs without -race
// and in the benchmarks.
const raceEnabled = true
