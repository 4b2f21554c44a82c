package hostile

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A hostile case is one broken or malicious input. run drives a public API
// (or the built binary) with it and returns nil when the outcome is the one
// wanted, else what went wrong. The harness adds the checks every case must
// pass: no panic, a bounded time and a bounded heap growth. The bounds are
// safety nets against a hang or an unbounded buffer, not performance
// assertions.
type hostileCase struct {
	area string // csv, mapping, duo, servicenow, config, plan
	name string
	what string // what the input is
	want string // what must happen
	// known is set to a finding not fixed yet: the case is expected to
	// fail (its failure is logged and the test skipped), and the test fails
	// once it passes, so that the marker goes when the fix lands.
	known string
	run   func(dir string) error
}

// timeBound is the safety net on a case's duration (heapBound, on its heap
// growth, is in race_test.go / norace_test.go).
const timeBound = 10 * time.Second * slowdown

// allCases gathers every area's table; TestHostile runs them in order and
// README.md lists them.
func allCases() []hostileCase {
	var cs []hostileCase
	cs = append(cs, csvCases()...)
	cs = append(cs, mappingCases()...)
	cs = append(cs, duoCases()...)
	cs = append(cs, serviceNowCases()...)
	cs = append(cs, binaryCases()...)
	return cs
}

func TestHostile(t *testing.T) {
	cases := allCases()
	if len(cases) < 30 {
		t.Errorf("only %d hostile inputs; the suite promises at least 30", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		id := c.area + "/" + c.name
		if seen[id] {
			t.Fatalf("case %s listed twice", id)
		}
		seen[id] = true
		// Sequential on purpose: the heap measurement is per case.
		t.Run(id, func(t *testing.T) {
			if testing.Short() && c.area == "config" || testing.Short() && c.area == "plan" {
				t.Skip("runs the binary")
			}
			dir := t.TempDir()
			readDeadline = defaultReadDeadline
			if c.known != "" {
				readDeadline = time.Second
			}
			lastMessage.Store(nil)
			res := guarded(func() error { return c.run(dir) })
			if m := lastMessage.Load(); m != nil {
				t.Logf("message: %s", clip(strings.TrimSpace(*m)))
			}
			if c.known != "" {
				// Under -race the bounds are wider, so a finding about memory may
				// pass there: only a normal run says it is fixed.
				if !raceEnabled && res.panicked == nil && !res.timedOut && res.heapGrowth <= heapBound && res.err == nil {
					t.Fatalf("%s: passes now: remove its known marker (%s)", c.what, c.known)
				}
				t.Skipf("KNOWN FINDING (%s): panic=%v timedOut=%v heap=+%dMB err=%v", c.known, res.panicked, res.timedOut, res.heapGrowth>>20, res.err)
			}
			if res.panicked != nil {
				t.Fatalf("%s: panic: %v", c.what, res.panicked)
			}
			if res.timedOut {
				t.Fatalf("%s: no answer within %v (want: %s)", c.what, timeBound, c.want)
			}
			if res.heapGrowth > heapBound {
				t.Errorf("%s: heap grew by %d MB (bound %d MB)", c.what, res.heapGrowth>>20, heapBound>>20)
			}
			if res.err != nil {
				t.Errorf("%s: want %s; %v", c.what, c.want, res.err)
			}
			t.Logf("%v, heap +%d MB", res.took.Round(time.Millisecond), res.heapGrowth>>20)
		})
	}
}

type guardResult struct {
	err        error
	panicked   any
	timedOut   bool
	took       time.Duration
	heapGrowth uint64
}

// guarded runs fn with a time bound, recovering a panic and sampling the
// heap while it runs. A case that times out leaves its goroutine behind;
// the test fails anyway.
func guarded(fn func() error) guardResult { return guardedFor(timeBound, fn) }

func guardedFor(bound time.Duration, fn func() error) guardResult {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	done := make(chan guardResult, 1)
	start := time.Now()
	go func() {
		var r guardResult
		defer func() {
			if p := recover(); p != nil {
				r.panicked = p
			}
			done <- r
		}()
		r.err = fn()
	}()
	var res guardResult
	select {
	case res = <-done:
	case <-time.After(bound):
		res.timedOut = true
	}
	res.took = time.Since(start)
	close(stop)
	<-sampled
	if p := peak.Load(); p > before.HeapInuse {
		res.heapGrowth = p - before.HeapInuse
	}
	return res
}

// TestHarnessCanFail shows the harness's own checks fire: a panic, a hang
// and a big allocation are each caught.
func TestHarnessCanFail(t *testing.T) {
	if r := guarded(func() error { panic("boom") }); r.panicked == nil {
		t.Error("panic not caught")
	}
	var sink []byte
	if r := guarded(func() error { sink = make([]byte, heapBound+(16<<20)); sink[len(sink)-1] = 1; return nil }); r.heapGrowth <= heapBound {
		t.Errorf("a %d MB allocation measured as %d MB", (heapBound+(16<<20))>>20, r.heapGrowth>>20)
	}
	_ = sink
	if r := guardedFor(50*time.Millisecond, func() error { time.Sleep(time.Second); return nil }); !r.timedOut {
		t.Error("hang not caught")
	}
}

// lastMessage is the last error text a case checked, logged by TestHostile
// so that `go test -v` shows what a person would read.
var lastMessage atomic.Pointer[string]

// The checks the cases share.

// wantErr checks that err is an error whose text holds every part, so that
// it names the input and the field or line at fault.
func wantErr(err error, parts ...string) error {
	if err == nil {
		return errors.New("got no error")
	}
	msg := err.Error()
	lastMessage.Store(&msg)
	var missing []string
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			missing = append(missing, fmt.Sprintf("%q", p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("error %q does not mention %s", clip(msg), strings.Join(missing, ", "))
	}
	return nil
}

// wantNoSecret checks that none of the secrets appears in s.
func wantNoSecret(s string, secrets ...string) error {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return fmt.Errorf("a secret appears in %q", clip(s))
		}
	}
	return nil
}

func clip(s string) string {
	const n = 600
	if len(s) > n {
		return s[:n] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TestMain builds the binary once for the config and plan cases.
func TestMain(m *testing.M) {
	code := func() int {
		cleanup, err := buildBinary()
		defer cleanup()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// TestREADMEListsEveryCase keeps hostile/README.md's table in step with the
// suite.
// HOSTILE_WRITE_README=1 rewrites the table between the markers.
func TestREADMEListsEveryCase(t *testing.T) {
	if os.Getenv("HOSTILE_WRITE_README") == "1" {
		writeREADMETable(t)
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range allCases() {
		if !strings.Contains(string(b), "`"+c.area+"/"+c.name+"`") {
			t.Errorf("README.md does not list `%s/%s`", c.area, c.name)
		}
	}
}

// BenchmarkHostileFullSize runs the cases whose inputs shrink under the race
// detector at their full size (make bench).
func BenchmarkHostileFullSize(b *testing.B) {
	savedField, savedColumns := bigField, manyColumns
	bigField, manyColumns = 50<<20, 1_000_000
	defer func() { bigField, manyColumns = savedField, savedColumns }()
	for _, c := range allCases() {
		if !strings.Contains(c.name, "50MB") && !strings.Contains(c.name, "million") {
			continue
		}
		b.Run(c.area+"/"+c.name, func(b *testing.B) {
			for range b.N {
				res := guarded(func() error { return c.run(b.TempDir()) })
				if c.known == "" && (res.panicked != nil || res.err != nil) {
					b.Fatalf("%s: panic %v, err %v", c.what, res.panicked, res.err)
				}
				b.ReportMetric(float64(res.heapGrowth>>20), "heapMB")
			}
		})
	}
}

const tableStart, tableEnd = "<!-- cases -->", "<!-- /cases -->"

func writeREADMETable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(b), tableStart)
	_, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatal("README.md lacks the table markers")
	}
	var tb strings.Builder
	tb.WriteString(tableStart + "\n| case | input | what must happen | status |\n| --- | --- | --- | --- |\n")
	esc := strings.NewReplacer("|", "\\|", "\n", " ")
	for _, c := range allCases() {
		status := "holds"
		if c.known != "" {
			status = "**finding**: " + esc.Replace(c.known)
		}
		fmt.Fprintf(&tb, "| `%s/%s` | %s | %s | %s |\n", c.area, c.name, esc.Replace(c.what), esc.Replace(c.want), status)
	}
	tb.WriteString(tableEnd)
	if err := os.WriteFile("README.md", []byte(before+tb.String()+after), 0o644); err != nil {
		t.Fatal(err)
	}
}
