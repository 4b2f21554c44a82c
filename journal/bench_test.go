package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dsync "github.com/duosync/duosync/sync"
)

// journalPairs journals n ActionStarted+ActionFinished pairs from 8
// goroutines, as the apply pool does, and returns the elapsed time.
func journalPairs(b *testing.B, j *Journal, runID string, n int) time.Duration {
	b.Helper()
	const workers = 8
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		count := n / workers
		if w < n%workers {
			count++
		}
		wg.Add(1)
		go func(w, count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				a := dsync.JournalAction{Kind: KindEnroll, Username: fmt.Sprintf("user%d-%d@example.com", w, i), Requests: []string{"RITM0010001"}}
				id, err := j.ActionStarted(ctx, runID, a)
				if err != nil {
					errs <- err
					return
				}
				if err := j.ActionFinished(ctx, id, ResultOK, ""); err != nil {
					errs <- err
					return
				}
			}
		}(w, count)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

func benchJournal(b *testing.B) *Journal {
	b.Helper()
	j, err := Open(filepath.Join(b.TempDir(), FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	if err := j.BeginRun(context.Background(), Run{ID: "bench", Mode: "apply"}); err != nil {
		b.Fatal(err)
	}
	return j
}

// BenchmarkActionPairs: one op is one ActionStarted+ActionFinished pair, from 8 goroutines.
func BenchmarkActionPairs(b *testing.B) {
	j := benchJournal(b)
	b.ResetTimer()
	elapsed := journalPairs(b, j, "bench", b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pairs/s")
}

// Benchmark10000Actions journals the 10,000 actions of the scale scenario.
// For comparison: at 20 ms latency and 8 workers, their API calls alone take
// 10,000 × 20 ms ÷ 8 = 25 s.
func Benchmark10000Actions(b *testing.B) {
	for i := 0; i < b.N; i++ {
		j := benchJournal(b)
		elapsed := journalPairs(b, j, "bench", 10000)
		b.ReportMetric(elapsed.Seconds(), "s/10k-actions")
		if _, err := j.Enrollments(context.Background(), []string{"user0-0@example.com"}); err != nil {
			b.Fatal(err)
		}
	}
}
