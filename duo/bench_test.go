package duo_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/admin"

	"github.com/duosync/duosync/duo/duotest"
)

// BenchmarkReadUsers100k reads 100,000 users from the emulator at 20 ms of
// latency per call, with duosync's reader and with duo_api_golang's
// admin.Client.GetUsers() and its default paging, in the same run, and
// prints calls, wall time and the ratio. Run: make bench, or
//
//	go test -run '^$' -bench ReadUsers100k -benchtime 1x ./duo/
func BenchmarkReadUsers100k(b *testing.B) {
	const n = 100_000
	srv := startEmulator(b, duotest.Options{GenerateUsers: n, GenerateGroups: 50, GenerateSeed: 1, Latency: 20 * time.Millisecond})
	ours := emulatorClient(b, srv)
	api := duoapi.NewDuoApi(srv.IKey(), srv.SKey(), srv.Host(), "duosync-bench",
		duoapi.SetTransport(func(t *http.Transport) { t.TLSClientConfig.RootCAs = srv.CAPool() }))
	lib := admin.New(*api)
	want := srv.State().Users
	ctx := context.Background()

	type result struct {
		calls   int64
		wall    time.Duration
		rows    int
		inOrder bool
	}
	var mine, theirs result
	for b.Loop() {
		srv.ResetStats()
		start := time.Now()
		users, _, err := ours.ListUsers(ctx)
		mine.wall = time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		mine.calls = srv.Stats().Endpoints["GET /admin/v1/users"]
		mine.rows, mine.inOrder = len(users), len(users) == len(want)
		for i := 0; mine.inOrder && i < len(users); i++ {
			mine.inOrder = users[i].ID == want[i].UserID
		}

		srv.ResetStats()
		start = time.Now()
		res, err := lib.GetUsers()
		theirs.wall = time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		theirs.calls = srv.Stats().Endpoints["GET /admin/v1/users"]
		theirs.rows, theirs.inOrder = len(res.Response), len(res.Response) == len(want)
		for i := 0; theirs.inOrder && i < len(res.Response); i++ {
			theirs.inOrder = res.Response[i].UserID == want[i].UserID
		}
	}
	if mine.rows != n || !mine.inOrder {
		b.Errorf("duosync's reader returned %d rows (in order: %v), want %d in order", mine.rows, mine.inOrder, n)
	}
	b.ReportMetric(float64(mine.calls), "duosync-calls")
	b.ReportMetric(mine.wall.Seconds(), "duosync-s")
	b.ReportMetric(float64(theirs.calls), "golang-calls")
	b.ReportMetric(theirs.wall.Seconds(), "golang-s")
	b.ReportMetric(theirs.wall.Seconds()/mine.wall.Seconds(), "wall-ratio")
	fmt.Fprintf(os.Stdout, "\nReading %d users, 20 ms latency per call (same emulator, same run):\n", n)
	fmt.Fprintf(os.Stdout, "  %-34s %6s %10s %8s %9s\n", "reader", "calls", "wall", "rows", "in order")
	fmt.Fprintf(os.Stdout, "  %-34s %6d %10s %8d %9v\n", "duosync duo.Client.ListUsers", mine.calls, mine.wall.Round(time.Millisecond), mine.rows, mine.inOrder)
	fmt.Fprintf(os.Stdout, "  %-34s %6d %10s %8d %9v\n", "duo_api_golang admin.GetUsers()", theirs.calls, theirs.wall.Round(time.Millisecond), theirs.rows, theirs.inOrder)
	fmt.Fprintf(os.Stdout, "  ratio: %.1fx fewer calls, %.1fx less wall time\n\n",
		float64(theirs.calls)/float64(mine.calls), theirs.wall.Seconds()/mine.wall.Seconds())
}
