package duotest

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// State is a snapshot of the emulated account, served at /_emulator/state.
type State struct {
	Users  []StateUser  `json:"users"`
	Groups []StateGroup `json:"groups"`
	// Outbox holds every enrollment email "sent", one entry per enroll call.
	Outbox []Enrollment `json:"outbox"`
}

// StateUser is a user in a State snapshot.
type StateUser struct {
	UserID     string   `json:"user_id"`
	Username   string   `json:"username"`
	Aliases    []string `json:"aliases"` // set aliases in position order (alias1 first)
	Email      string   `json:"email"`
	Realname   string   `json:"realname"`
	Firstname  string   `json:"firstname"`
	Lastname   string   `json:"lastname"`
	Notes      string   `json:"notes"`
	Status     string   `json:"status"`
	IsEnrolled bool     `json:"is_enrolled"`
	Created    int64    `json:"created"`
	Groups     []string `json:"groups"` // group names, in the order they were added
}

// StateGroup is a group in a State snapshot.
type StateGroup struct {
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
	Desc    string `json:"desc"`
	Status  string `json:"status"`
	Members int    `json:"members"`
}

// Enrollment is one enrollment email in the outbox.
type Enrollment struct {
	Username  string    `json:"username"` // as the caller named the user (username or alias)
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	ValidSecs int       `json:"valid_secs"`
	Code      string    `json:"code"` // the string the enroll call answered
	SentAt    time.Time `json:"sent_at"`
}

// Stats counts what the emulator served since start or the last ResetStats,
// served at /_emulator/stats. Every API request received counts, whatever
// its answer (401, 429, fault, ...).
type Stats struct {
	Calls  int64 `json:"calls"`  // every API request
	Reads  int64 `json:"reads"`  // GET requests
	Writes int64 `json:"writes"` // POST, PUT, PATCH and DELETE requests
	// Endpoints counts requests by route, e.g. "GET /admin/v1/users",
	// "POST /admin/v1/users/{id}/groups"; unknown routes count as "GET (unknown)".
	Endpoints map[string]int64 `json:"endpoints"`
	// Status counts answers by HTTP status ("200", "429", ...); dropped
	// connections count as "dropped".
	Status       map[string]int64 `json:"status"`
	RateLimited  int64            `json:"rate_limited"`  // 429 answers, from the budgets or injected
	AuthFailures int64            `json:"auth_failures"` // 401 answers
	// Faults counts faults served by kind: "500", "503", "drop", "lost",
	// "slow" (random, from FaultRate) and "injected" (from Inject).
	Faults          map[string]int64 `json:"faults"`
	PeakConcurrency int64            `json:"peak_concurrency"` // most API requests in flight at once
}

// counters accumulates Stats; it has its own lock so that counting never
// waits for the store.
type counters struct {
	mu       sync.Mutex
	s        Stats
	inflight atomic.Int64
}

func newStats() Stats {
	return Stats{Endpoints: map[string]int64{}, Status: map[string]int64{}, Faults: map[string]int64{}}
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = newStats()
	c.s.PeakConcurrency = c.inflight.Load()
}

// begin counts a request entering; the returned func counts it leaving.
func (c *counters) begin(method, route string) func() {
	n := c.inflight.Add(1)
	c.mu.Lock()
	c.s.Calls++
	if method == "GET" {
		c.s.Reads++
	} else {
		c.s.Writes++
	}
	c.s.Endpoints[method+" "+route]++
	if n > c.s.PeakConcurrency {
		c.s.PeakConcurrency = n
	}
	c.mu.Unlock()
	return func() { c.inflight.Add(-1) }
}

func (c *counters) answered(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Status[status]++
	switch status {
	case "429":
		c.s.RateLimited++
	case "401":
		c.s.AuthFailures++
	}
}

func (c *counters) fault(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Faults[kind]++
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.Endpoints = maps.Clone(c.s.Endpoints)
	out.Status = maps.Clone(c.s.Status)
	out.Faults = maps.Clone(c.s.Faults)
	return out
}
