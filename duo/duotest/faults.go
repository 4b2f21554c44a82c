package duotest

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is a misbehaviour injected with Server.Inject. It applies to the
// next Count authenticated requests that match Method and Path and pass the
// rate budget (so a retried request still has to be signed correctly).
type Fault struct {
	Method string // "" = any method
	Path   string // exact URL path, or a prefix ending in "*"; "" = any
	Count  int    // how many requests it affects; 0 = 1

	// Status answers with this HTTP status and Duo's error envelope
	// (Code, Message) without applying the request, e.g. 429 / 42901.
	Status  int
	Code    int
	Message string // default: Duo's message for Code
	// Drop closes the connection without applying the request or answering.
	Drop bool
	// Lost applies the request, then closes the connection without an
	// answer: the write happened but the client cannot know.
	Lost bool
	// Delay holds the answer back this long (on top of Options.Latency).
	Delay time.Duration

	kind string // for random faults: the Stats.Faults key
}

func (f *Fault) matches(method, path string) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	if prefix, ok := strings.CutSuffix(f.Path, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return f.Path == "" || f.Path == path
}

func (f *Fault) reply() reply {
	if f.Status == http.StatusServiceUnavailable && f.Code == 0 {
		// What a load balancer in front of the API answers: not JSON.
		return reply{status: f.Status, ctype: "text/html",
			body: []byte("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>\n")}
	}
	msg := f.Message
	if msg == "" {
		msg = messages[f.Code]
	}
	return (&apiError{status: f.Status, code: f.Code, message: msg}).reply()
}

// Inject queues a fault for the next matching requests. Faults are used in
// the order they were injected.
func (s *Server) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.injected = append(s.injected, &f)
}

// takeInjected returns (a copy of) the first injected fault matching the
// request and uses up one of its count.
func (s *Server) takeInjected(method, path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.injected {
		if !f.matches(method, path) {
			continue
		}
		f.Count--
		if f.Count == 0 {
			s.injected = append(s.injected[:i], s.injected[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

// faultPicker draws random faults from a seeded generator, so a given seed
// yields the same sequence of faults for the same sequence of requests.
type faultPicker struct {
	mu   sync.Mutex
	rate float64
	rng  *rand.Rand
}

func newFaultPicker(rate float64, seed int64) *faultPicker {
	return &faultPicker{rate: rate, rng: rand.New(rand.NewPCG(uint64(seed), 0x6661756c7473))}
}

// faultKinds are the random faults, equally likely. A "lost" answer on a
// read is just a dropped connection.
var faultKinds = []string{"500", "503", "drop", "lost", "slow"}

// pick decides the fault for one request, nil for none.
func (p *faultPicker) pick(write bool, slow time.Duration) *Fault {
	if p.rate <= 0 {
		return nil
	}
	p.mu.Lock()
	hit := p.rng.Float64() < p.rate
	kind := faultKinds[p.rng.IntN(len(faultKinds))]
	p.mu.Unlock()
	if !hit {
		return nil
	}
	if kind == "lost" && !write {
		kind = "drop"
	}
	switch kind {
	case "500":
		return &Fault{kind: kind, Status: http.StatusInternalServerError, Code: codeInternal}
	case "503":
		return &Fault{kind: kind, Status: http.StatusServiceUnavailable}
	case "drop":
		return &Fault{kind: kind, Drop: true}
	case "lost":
		return &Fault{kind: kind, Lost: true}
	default:
		return &Fault{kind: kind, Delay: slow}
	}
}
