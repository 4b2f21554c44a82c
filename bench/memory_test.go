package bench

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// memPeak is the most memory a measured phase used.
type memPeak struct {
	HeapInuse uint64 // peak runtime.MemStats.HeapInuse, sampled
	Sys       uint64 // peak runtime.MemStats.Sys (all memory the Go runtime mapped)
	HWM       uint64 // the process's peak resident set (VmHWM) over the phase; 0 when unknown
}

// memSampler samples MemStats from a goroutine until stopped.
type memSampler struct {
	stop chan struct{}
	done chan memPeak
}

// startMemSampler collects garbage and resets the process's VmHWM first, so
// that what an earlier phase used is not counted in this one.
func startMemSampler(every time.Duration) *memSampler {
	runtime.GC()
	debug.FreeOSMemory()
	hwmResettable := resetHWM()
	s := &memSampler{stop: make(chan struct{}), done: make(chan memPeak, 1)}
	go func() {
		var p memPeak
		var ms runtime.MemStats
		sample := func() {
			runtime.ReadMemStats(&ms)
			p.HeapInuse = max(p.HeapInuse, ms.HeapInuse)
			p.Sys = max(p.Sys, ms.Sys)
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sample()
			select {
			case <-s.stop:
				sample()
				if hwmResettable {
					p.HWM = readHWM()
				}
				s.done <- p
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) Stop() memPeak {
	close(s.stop)
	return <-s.done
}

// resetHWM resets VmHWM to the current resident set (Linux: writing 5 to
// /proc/self/clear_refs); false where that is not possible.
func resetHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil && readHWM() > 0
}

// readHWM returns VmHWM from /proc/self/status in bytes, 0 when unknown.
func readHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}
