package source

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeBigExport writes an export of n data rows in ServiceNow's default
// columns, with quoted names and accented text, and returns its path.
func writeBigExport(tb testing.TB, dir string, n int) string {
	tb.Helper()
	path := filepath.Join(dir, "sc_req_item_big.csv")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, "number,sys_id,approval,state,cat_item,requested_for.user_name,requested_for.email,"+
		"requested_for.first_name,requested_for.last_name,requested_for.name,variables.duo_group,sys_updated_on\r\n")
	groups := []string{"MFA Users", "VPN Users", "Finance Apps"}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "RITM%07d,%032x,Approved,Open,Duo Group Access,user%d,user%d@example.com,José,Nguyễn %d,\"Nguyễn %d, José\",%s,2026-11-30 14:05:12\r\n",
			i, i, i, i, i, i, groups[i%3])
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// peakHeap samples HeapInuse while fn runs and returns its peak above the
// level before fn started.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// BenchmarkReadCSV1M reads a generated 1,000,000-row export with ReadCSV and
// with a bare encoding/csv loop, in the same run, and prints rows per second
// and peak heap of both.
func BenchmarkReadCSV1M(b *testing.B) {
	const rows = 1_000_000
	path := writeBigExport(b, b.TempDir(), rows)
	st, _ := os.Stat(path)

	var ours, raw time.Duration
	var oursPeak, rawPeak uint64
	for i := 0; i < b.N; i++ {
		var n int
		start := time.Now()
		p := peakHeap(func() {
			res, err := ReadCSV(context.Background(), []string{path}, CSVOptions{}, func(r Request) error {
				n++
				return nil
			})
			if err != nil || n != rows || len(res.Problems) != 0 {
				b.Fatalf("ReadCSV: %d rows, %d problems, err %v", n, len(res.Problems), err)
			}
		})
		ours += time.Since(start)
		oursPeak = max(oursPeak, p)

		n = 0
		start = time.Now()
		p = peakHeap(func() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			r := csv.NewReader(f)
			r.ReuseRecord = true
			for {
				_, err := r.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != rows+1 {
				b.Fatalf("encoding/csv: %d records", n)
			}
		})
		raw += time.Since(start)
		rawPeak = max(rawPeak, p)
	}
	oursRate := float64(rows*b.N) / ours.Seconds()
	rawRate := float64(rows*b.N) / raw.Seconds()
	b.ReportMetric(oursRate, "rows/s")
	b.ReportMetric(rawRate, "raw-rows/s")
	b.ReportMetric(float64(oursPeak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(rawPeak)/(1<<20), "raw-peak-MiB")
	fmt.Printf("\n1,000,000-row export (%.0f MiB), %d run(s)\n", float64(st.Size())/(1<<20), b.N)
	fmt.Printf("%-34s %14s %14s\n", "reader", "rows/s", "peak heap MiB")
	fmt.Printf("%-34s %14.0f %14.1f\n", "source.ReadCSV (check, parse, dedup)", oursRate, float64(oursPeak)/(1<<20))
	fmt.Printf("%-34s %14.0f %14.1f\n", "encoding/csv (bare Read loop)", rawRate, float64(rawPeak)/(1<<20))
	fmt.Println("ReadCSV also hashes (SHA-256, twice), checks the charset, bounds fields, builds a map per")
	fmt.Println("request and keeps a 32-byte fingerprint per distinct RITM for duplicates; its peak is mostly that set.")
}
