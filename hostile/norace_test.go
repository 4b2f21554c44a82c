//go:build !race

package hostile

const (
	raceEnabled = false
	slowdown    = 1
	heapBound   = 200 << 20
	sizeDivisor = 1
)
