//go:build race

package hostile

// Under the race detector code runs several times slower and the heap is
// sampled later after each burst of garbage, so the safety-net bounds are
// widened and the biggest generated inputs shrink (they still exceed every
// limit they test; BenchmarkHostileFullSize runs them at full size).
const (
	raceEnabled = true
	slowdown    = 3
	heapBound   = 300 << 20
	sizeDivisor = 5
)
