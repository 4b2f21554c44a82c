package duotest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configure an emulator. The zero value is a working, empty,
// unthrottled and fault-free account with random keys.
type Options struct {
	IKey, SKey string // generated (random, "DI" + 18 chars / 40 chars) when empty

	Seed           *Seed // initial users and groups (see LoadSeed)
	GenerateUsers  int   // synthetic users added after the seed
	GenerateGroups int   // synthetic groups the synthetic users join
	GenerateSeed   int64 // makes generated data, ids and enrollment codes deterministic

	Latency         time.Duration // added to every API answer
	ReadsPerMinute  int           // 0 = unlimited; excess is 429 code 42901
	WritesPerMinute int           // 0 = unlimited; excess is 429 code 42901
	FaultRate       float64       // share of API requests answered with a random fault (0..1)
	FaultSeed       int64         // makes the fault sequence deterministic
	SlowAnswer      time.Duration // delay of a "slow" fault; default 500ms
	PageCap         int           // return at most N rows per page even when limit is larger (0 = off)
	// ClockSkew is the allowed difference between a request's date and Now;
	// default 5m, well above the ~69 s over which clients retry with one Date.
	ClockSkew time.Duration
	// CaseSensitiveUsernames turns off case-folding when matching usernames
	// and aliases (they are always trimmed).
	CaseSensitiveUsernames bool

	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // nil = discard
}

// Server is a running Duo Admin API emulator over HTTPS.
type Server struct {
	ikey, skey string
	skew       time.Duration
	latency    time.Duration
	slow       time.Duration
	pageCap    int
	now        func() time.Time
	log        *slog.Logger

	ln     net.Listener
	srv    *http.Server
	host   string
	caPEM  []byte
	caFile string
	caPool *x509.CertPool

	mu       sync.Mutex // guards st and injected
	st       *store
	injected []*Fault

	reads, writes *rate.Limiter // nil = unlimited
	faults        *faultPicker
	stats         counters

	closeOnce sync.Once
	closeErr  error
}

// NewServer starts an emulator on a random port of 127.0.0.1.
func NewServer(opts Options) (*Server, error) { return Listen("127.0.0.1:0", opts) }

// Listen starts an emulator serving HTTPS on addr ("127.0.0.1:0" picks a port).
func Listen(addr string, opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("duo emulator: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.host = hostOf(ln.Addr())

	ca, err := newCA(s.host)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("duo emulator: %w", err)
	}
	s.caPEM, s.caPool = ca.pem, ca.pool
	f, err := os.CreateTemp("", "duo-emulator-ca-*.pem")
	if err == nil {
		_, err = f.Write(ca.pem)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("duo emulator: write CA file: %w", err)
	}
	s.caFile = f.Name()

	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("duo emulator stopped", "err", err)
		}
	}()
	s.log.Info("duo emulator listening", "host", s.host, "users", len(s.st.users), "groups", len(s.st.groups))
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	s := &Server{
		ikey:    opts.IKey,
		skey:    opts.SKey,
		skew:    opts.ClockSkew,
		latency: opts.Latency,
		slow:    opts.SlowAnswer,
		pageCap: opts.PageCap,
		now:     opts.Now,
		log:     opts.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.skew <= 0 {
		s.skew = 5 * time.Minute
	}
	if s.slow <= 0 {
		s.slow = 500 * time.Millisecond
	}
	if opts.FaultRate < 0 || opts.FaultRate > 1 {
		return nil, fmt.Errorf("duo emulator: fault rate %v is not between 0 and 1", opts.FaultRate)
	}
	if opts.GenerateUsers < 0 || opts.GenerateGroups < 0 || opts.PageCap < 0 ||
		opts.ReadsPerMinute < 0 || opts.WritesPerMinute < 0 || opts.Latency < 0 {
		return nil, errors.New("duo emulator: counts, rates, page cap and latency must not be negative")
	}
	var err error
	if s.ikey == "" {
		if s.ikey, err = randomKey("DI", 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"); err != nil {
			return nil, err
		}
	}
	if s.skey == "" {
		if s.skey, err = randomKey("", 40, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"); err != nil {
			return nil, err
		}
	}
	norm := defaultNormalize
	if opts.CaseSensitiveUsernames {
		norm = trimOnly
	}
	s.st = newStore(norm, opts.GenerateSeed)
	if opts.Seed != nil {
		if err := s.st.loadSeed(opts.Seed, s.now()); err != nil {
			return nil, fmt.Errorf("duo emulator: seed: %w", err)
		}
	}
	s.st.generate(opts.GenerateUsers, opts.GenerateGroups, opts.GenerateSeed, s.now())

	if opts.ReadsPerMinute > 0 {
		s.reads = perMinute(opts.ReadsPerMinute)
	}
	if opts.WritesPerMinute > 0 {
		s.writes = perMinute(opts.WritesPerMinute)
	}
	s.faults = newFaultPicker(opts.FaultRate, opts.FaultSeed)
	s.stats.s = newStats()
	return s, nil
}

// perMinute is a token bucket refilled at n per minute that holds at most
// one minute's budget.
func perMinute(n int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(n)/60), n)
}

func randomKey(prefix string, n int, alphabet string) (string, error) {
	b := []byte(prefix)
	for len(b) < n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("duo emulator: generate key: %w", err)
		}
		b = append(b, alphabet[i.Int64()])
	}
	return string(b), nil
}

// hostOf is the address clients use: an unspecified listen IP becomes 127.0.0.1.
func hostOf(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// Host is the "127.0.0.1:PORT" clients sign and connect to.
func (s *Server) Host() string { return s.host }

// IKey is the integration key the emulator accepts.
func (s *Server) IKey() string { return s.ikey }

// SKey is the secret key requests must be signed with.
func (s *Server) SKey() string { return s.skey }

// CAFile is the path of a PEM file holding the CA the emulator generated at
// start; it is removed by Close.
func (s *Server) CAFile() string { return s.caFile }

// CAPool is a pool holding only the emulator's CA.
func (s *Server) CAPool() *x509.CertPool { return s.caPool }

// CAPEM is the emulator's CA certificate in PEM.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// ReadyLine is the line `duosync emulate duo` prints once listening,
// newline-terminated: {"host":"127.0.0.1:PORT","ikey":"…","skey":"…","ca_file":"…"}.
func (s *Server) ReadyLine() []byte {
	b, _ := json.Marshal(struct {
		Host   string `json:"host"`
		IKey   string `json:"ikey"`
		SKey   string `json:"skey"`
		CAFile string `json:"ca_file"`
	}{s.host, s.ikey, s.skey, s.caFile})
	return append(b, '\n')
}

// Close stops serving, closes open connections and removes the CA file.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.srv.Close()
		if err := os.Remove(s.caFile); err != nil && !errors.Is(err, os.ErrNotExist) && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// Stats returns the counters since start or the last ResetStats.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.reset() }

// State returns a snapshot of every user, group and enrollment email.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Users: make([]StateUser, 0, len(s.st.users)), Groups: make([]StateGroup, 0, len(s.st.groups)),
		Outbox: append([]Enrollment{}, s.st.outbox...)}
	for _, u := range s.st.users {
		su := StateUser{UserID: u.id, Username: u.username, Aliases: []string{}, Email: u.email, Realname: u.realname,
			Firstname: u.firstname, Lastname: u.lastname, Notes: u.notes, Status: u.status, IsEnrolled: u.enrolled,
			Created: u.created, Groups: make([]string, 0, len(u.groups))}
		for _, a := range u.aliases {
			if a != "" {
				su.Aliases = append(su.Aliases, a)
			}
		}
		for _, g := range u.groups {
			su.Groups = append(su.Groups, g.name)
		}
		st.Users = append(st.Users, su)
	}
	for _, g := range s.st.groups {
		st.Groups = append(st.Groups, StateGroup{GroupID: g.id, Name: g.name, Desc: g.desc, Status: g.status, Members: len(g.members)})
	}
	return st
}

// SetUserStatus sets a user's status (e.g. "disabled", "locked out"), as an
// administrator or the system would; username may be an alias.
func (s *Server) SetUserStatus(username, status string) error {
	if !validStatus(status, true) {
		return fmt.Errorf("set status of %q: unknown status %q", username, status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.lookup(username)
	if u == nil {
		return fmt.Errorf("set status of %q: no such user", username)
	}
	u.status = status
	return nil
}

// SetUserEnrolled marks a user enrolled or not, as if they had finished (or
// reset) enrollment.
func (s *Server) SetUserEnrolled(username string, enrolled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.lookup(username)
	if u == nil {
		return fmt.Errorf("set enrolled of %q: no such user", username)
	}
	u.enrolled = enrolled
	return nil
}

// ServeHTTP serves the API and the unsigned /_emulator endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_emulator/state":
		writeJSON(w, s.State())
		return
	case "/_emulator/stats":
		if r.Method == http.MethodDelete {
			s.ResetStats()
		}
		writeJSON(w, s.Stats())
		return
	}
	s.serveAPI(w, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// maxBody bounds a request body; a bulk_create of 100 users is far below.
const maxBody = 4 << 20

// serveAPI is one Admin API request: count it, check its credentials, its
// rate budget and any fault, then answer it after the configured latency.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt := route(r.Method, r.URL.Path)
	done := s.stats.begin(r.Method, rt.pattern)
	defer done()

	rep, drop := s.answer(r, rt)
	if !sleep(r.Context(), s.latency) {
		return
	}
	if drop {
		s.stats.answered("dropped")
		s.log.Debug("duo emulator request", "method", r.Method, "path", r.URL.Path, "answer", "dropped")
		// Closing the connection without an answer: the client sees EOF.
		panic(http.ErrAbortHandler)
	}
	s.stats.answered(strconv.Itoa(rep.status))
	s.log.Debug("duo emulator request", "method", r.Method, "path", r.URL.Path, "status", rep.status)
	w.Header().Set("Content-Type", rep.ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// answer computes the reply; drop means the connection is to be dropped
// (after the request was applied for a lost answer).
func (s *Server) answer(r *http.Request, rt routed) (rep reply, drop bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return reply{}, true
	}
	if len(body) > maxBody {
		return invalid("request body too large").reply(), false
	}
	req, params, aerr := decode(r, body)
	if aerr != nil {
		return aerr.reply(), false
	}
	now := s.now()
	if aerr := s.verify(req, now); aerr != nil {
		return aerr.reply(), false
	}
	if lim := s.limiterFor(r.Method); lim != nil && !lim.AllowN(now, 1) {
		return errf(http.StatusTooManyRequests, codeRateLimited, "").reply(), false
	}

	f := s.takeInjected(r.Method, r.URL.Path)
	if f == nil {
		f = s.faults.pick(r.Method != http.MethodGet, s.slow)
		if f != nil {
			s.stats.fault(f.kind)
		}
	} else {
		s.stats.fault("injected")
	}
	if f != nil {
		if !sleep(r.Context(), f.Delay) {
			return reply{}, true
		}
		switch {
		case f.Drop:
			return reply{}, true
		case f.Status != 0:
			return f.reply(), false
		}
	}

	if rt.handle == nil {
		rep = notFound("no such endpoint").reply()
	} else {
		s.mu.Lock()
		rep = rt.handle(s, &apiRequest{method: r.Method, params: params, vars: rt.vars, now: now})
		s.mu.Unlock()
	}
	return rep, f != nil && f.Lost
}

func (s *Server) limiterFor(method string) *rate.Limiter {
	if method == http.MethodGet {
		return s.reads
	}
	return s.writes
}

// decode reads a request's parameters: the query string, plus a form body
// (also when sent chunked, without Content-Length) or the fields of a JSON
// object body. '+' on the wire is a space. It returns the request as the
// verifier sees it and the parameters the handler reads (for JSON, the
// body's fields, non-string values as their JSON text).
func decode(r *http.Request, body []byte) (*signedRequest, url.Values, *apiError) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, invalid("query string is not URL-encoded")
	}
	req := &signedRequest{method: r.Method, host: r.Host, path: r.URL.Path, params: query, body: body, header: r.Header}
	params := url.Values{}
	for k, v := range query {
		params[k] = append([]string(nil), v...)
	}
	if len(body) == 0 {
		return req, params, nil
	}
	if isJSON(r.Header) {
		// v5: the signature covers the body by its hash; the params line is the query.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, nil, invalid("body is not a JSON object")
		}
		for k, raw := range obj {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				params.Set(k, str)
			} else {
				params.Set(k, string(raw))
			}
		}
		return req, params, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, invalid("body is not URL-encoded")
	}
	sig := url.Values{}
	for k, v := range query {
		sig[k] = append([]string(nil), v...)
	}
	for k, v := range form {
		sig[k] = append(sig[k], v...)
		params[k] = append(params[k], v...)
	}
	req.params = sig
	return req, params, nil
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json"
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
