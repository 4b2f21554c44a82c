package duo

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats counts what a Client did since it was built. Calls counts HTTP
// attempts (retries included) by endpoint, e.g. "GET /admin/v1/users" or
// "POST /admin/v1/users/{id}/groups".
type Stats struct {
	Calls       map[string]int64 `json:"calls"`
	TotalCalls  int64            `json:"total_calls"`
	Retries     int64            `json:"retries"`      // attempts after the first
	RateLimited int64            `json:"rate_limited"` // 429 answers
	Unknown     int64            `json:"unknown"`      // writes sent with no answer
	Verified    int64            `json:"verified"`     // unknown writes settled by a read
	Failed      int64            `json:"failed"`       // calls that returned an error
}

type stats struct {
	mu          sync.Mutex
	calls       map[string]*atomic.Int64
	total       atomic.Int64
	retries     atomic.Int64
	rateLimited atomic.Int64
	unknown     atomic.Int64
	verified    atomic.Int64
	failed      atomic.Int64
}

func (s *stats) call(endpoint string) {
	s.total.Add(1)
	s.mu.Lock()
	n, ok := s.calls[endpoint]
	if !ok {
		if s.calls == nil {
			s.calls = map[string]*atomic.Int64{}
		}
		n = new(atomic.Int64)
		s.calls[endpoint] = n
	}
	s.mu.Unlock()
	n.Add(1)
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	out := Stats{
		Calls:       map[string]int64{},
		TotalCalls:  s.total.Load(),
		Retries:     s.retries.Load(),
		RateLimited: s.rateLimited.Load(),
		Unknown:     s.unknown.Load(),
		Verified:    s.verified.Load(),
		Failed:      s.failed.Load(),
	}
	s.mu.Lock()
	calls := maps.Clone(s.calls)
	s.mu.Unlock()
	for k, v := range calls {
		out.Calls[k] = v.Load()
	}
	return out
}
