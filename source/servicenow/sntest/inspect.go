package sntest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is "Requests per Period", like a sys_rate_limit_rules entry
// (ServiceNow counts per hour; shorter periods keep tests fast).
type RateLimit struct {
	Requests int
	Period   time.Duration
}

// ParseRateLimit reads "N/h", "N/m", "N/s", "N/<duration>" (e.g. "20/500ms"),
// or a bare "N" meaning per hour. "" is no limit.
func ParseRateLimit(spec string) (RateLimit, error) {
	if spec == "" {
		return RateLimit{}, nil
	}
	n, per, hasPer := strings.Cut(spec, "/")
	reqs, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || reqs <= 0 {
		return RateLimit{}, fmt.Errorf("rate limit %q: want N/h, N/m, N/s or N/DURATION with N > 0", spec)
	}
	rl := RateLimit{Requests: reqs, Period: time.Hour}
	if hasPer {
		switch per = strings.TrimSpace(per); per {
		case "h", "hour":
			rl.Period = time.Hour
		case "m", "min", "minute":
			rl.Period = time.Minute
		case "s", "sec", "second":
			rl.Period = time.Second
		default:
			d, err := time.ParseDuration(per)
			if err != nil || d <= 0 {
				return RateLimit{}, fmt.Errorf("rate limit %q: period %q is not h, m, s or a duration", spec, per)
			}
			rl.Period = d
		}
	}
	return rl, nil
}

func (rl RateLimit) periodName() string {
	switch rl.Period {
	case time.Hour:
		return "hour"
	case time.Minute:
		return "minute"
	case time.Second:
		return "second"
	}
	return rl.Period.String()
}

// limiter is a fixed-window counter, as ServiceNow's rate limit rules are.
type limiter struct {
	spec  RateLimit
	now   func() time.Time
	mu    sync.Mutex
	start time.Time
	used  int
}

// take counts one request, or says how long until the window resets.
func (l *limiter) take() (wait time.Duration, denied bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.start.IsZero() || now.Sub(l.start) >= l.spec.Period {
		l.start, l.used = now, 0
	}
	if l.used >= l.spec.Requests {
		return l.start.Add(l.spec.Period).Sub(now), true
	}
	l.used++
	return 0, false
}

func (l *limiter) headers(w http.ResponseWriter) {
	l.mu.Lock()
	reset := l.start.Add(l.spec.Period)
	l.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(l.spec.Requests))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	w.Header().Set("X-RateLimit-Rule", sysID("sys_rate_limit_rules", "emulator"))
}

type statsCounters struct {
	mu           sync.Mutex
	byEndpoint   map[string]int64
	requests     atomic.Int64
	rateLimited  atomic.Int64
	faults       atomic.Int64
	unauthorized atomic.Int64
	tokensIssued atomic.Int64
	patches      atomic.Int64
	peakInflight atomic.Int64
}

func (c *statsCounters) count(endpoint string) {
	c.requests.Add(1)
	c.mu.Lock()
	c.byEndpoint[endpoint]++
	c.mu.Unlock()
}

func (c *statsCounters) peak(n int64) {
	for {
		p := c.peakInflight.Load()
		if n <= p || c.peakInflight.CompareAndSwap(p, n) {
			return
		}
	}
}

// Stats are the emulator's counters, served at /_emulator/stats.
type Stats struct {
	Requests        int64            `json:"requests"`
	ByEndpoint      map[string]int64 `json:"by_endpoint"` // "GET sc_req_item", "PATCH sc_req_item/{sys_id}", "POST oauth_token.do"
	RateLimited     int64            `json:"rate_limited"`
	Faults          int64            `json:"faults"`
	Unauthorized    int64            `json:"unauthorized"`
	TokensIssued    int64            `json:"tokens_issued"`
	Patches         int64            `json:"patches"` // PATCHes applied
	PeakConcurrency int64            `json:"peak_concurrency"`
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	c.mu.Lock()
	by := make(map[string]int64, len(c.byEndpoint))
	for k, v := range c.byEndpoint {
		by[k] = v
	}
	c.mu.Unlock()
	return Stats{Requests: c.requests.Load(), ByEndpoint: by, RateLimited: c.rateLimited.Load(),
		Faults: c.faults.Load(), Unauthorized: c.unauthorized.Load(), TokensIssued: c.tokensIssued.Load(),
		Patches: c.patches.Load(), PeakConcurrency: c.peakInflight.Load()}
}

// State is the instance's requested items with what write-back did to them,
// served at /_emulator/state.
type State struct {
	Requests []RequestState `json:"requests"`
}

// RequestState is one RITM.
type RequestState struct {
	SysID        string            `json:"sys_id"`
	Number       string            `json:"number"`
	Approval     string            `json:"approval"`
	State        string            `json:"state"`
	RequestedFor string            `json:"requested_for"` // the user's user_name
	CatItem      string            `json:"cat_item"`      // the item's name
	Variables    map[string]string `json:"variables,omitempty"`
	UpdatedOn    string            `json:"sys_updated_on"`
	WorkNotes    []JournalEntry    `json:"work_notes"`
	Comments     []JournalEntry    `json:"comments"`
}

// JournalEntry is one sys_journal_field entry.
type JournalEntry struct {
	Value     string `json:"value"`
	CreatedOn string `json:"sys_created_on"`
	CreatedBy string `json:"sys_created_by"`
}

// State returns the RITMs in insertion order, each with its journal entries oldest first.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	journal := map[string]map[string][]JournalEntry{}
	for _, j := range s.db.tables["sys_journal_field"].rows {
		if journal[j["element_id"]] == nil {
			journal[j["element_id"]] = map[string][]JournalEntry{}
		}
		journal[j["element_id"]][j["element"]] = append(journal[j["element_id"]][j["element"]],
			JournalEntry{Value: j["value"], CreatedOn: j["sys_created_on"], CreatedBy: j["sys_created_by"]})
	}
	users, items := s.db.tables["sys_user"], s.db.tables["sc_cat_item"]
	st := State{Requests: []RequestState{}}
	for _, r := range s.db.tables["sc_req_item"].rows {
		rs := RequestState{SysID: r["sys_id"], Number: r["number"], Approval: r["approval"], State: r["state"],
			UpdatedOn: r["sys_updated_on"], WorkNotes: journal[r["sys_id"]]["work_notes"],
			Comments: journal[r["sys_id"]]["comments"]}
		if u := users.get(r["requested_for"]); u != nil {
			rs.RequestedFor = u["user_name"]
		}
		if it := items.get(r["cat_item"]); it != nil {
			rs.CatItem = it["name"]
		}
		if vars := s.db.vars[r["sys_id"]]; len(vars) > 0 {
			rs.Variables = make(map[string]string, len(vars))
			for k, v := range vars {
				rs.Variables[k] = v
			}
		}
		if rs.WorkNotes == nil {
			rs.WorkNotes = []JournalEntry{}
		}
		if rs.Comments == nil {
			rs.Comments = []JournalEntry{}
		}
		st.Requests = append(st.Requests, rs)
	}
	return st
}

// Request returns one RITM's state by number or sys_id.
func (st State) Request(key string) (RequestState, bool) {
	for _, r := range st.Requests {
		if r.Number == key || r.SysID == key {
			return r, true
		}
	}
	return RequestState{}, false
}
