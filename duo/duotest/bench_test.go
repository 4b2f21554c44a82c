package duotest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func BenchmarkGenerate100k(b *testing.B) {
	for b.Loop() {
		st := newStore(defaultNormalize, 1)
		st.generate(100_000, 50, 1, time.Now())
	}
}

// BenchmarkListAllUsers100k pages through 100,000 users at limit 300 with a
// page cap of 150, one call after the other, and reports the calls made.
func BenchmarkListAllUsers100k(b *testing.B) {
	s := newTestServer(b, Options{GenerateUsers: 100_000, GenerateGroups: 50, PageCap: 150})
	c := newSigner(b, s)
	for b.Loop() {
		s.ResetStats()
		params := form("limit", "300")
		rows := 0
		for {
			_, env, err := c.call("GET", "/admin/v1/users", params)
			if err != nil || env.Metadata == nil {
				b.Fatalf("page at %s: %v %+v", params.Get("offset"), err, env)
			}
			rows += len(decodeRows(b, env))
			if env.Metadata.NextOffset == nil {
				break
			}
			params.Set("offset", fmt.Sprint(*env.Metadata.NextOffset))
		}
		if rows != 100_000 {
			b.Fatalf("%d rows", rows)
		}
		b.ReportMetric(float64(s.Stats().Calls), "calls/op")
	}
}

func decodeRows(b *testing.B, env envelope) []struct{} {
	var rows []struct{}
	if err := json.Unmarshal(env.Response, &rows); err != nil {
		b.Fatal(err)
	}
	return rows
}

// BenchmarkListUsersPage is the server's own cost of one page of 300 users,
// without TLS or a client.
func BenchmarkListUsersPage(b *testing.B) {
	s, err := newServer(Options{GenerateUsers: 100_000, GenerateGroups: 50})
	if err != nil {
		b.Fatal(err)
	}
	req := &apiRequest{method: "GET", params: form("limit", "300", "offset", "50000"), now: time.Now()}
	for b.Loop() {
		if rep := listUsers(s, req); rep.status != 200 {
			b.Fatal(rep.status)
		}
	}
}
