// Package sntest is an emulator of the ServiceNow Table API for tests and
// demos: the response shapes of each sysparm_display_value mode, Link and
// X-Total-Count paging, error bodies, Basic and OAuth 2 authentication, a
// rate limit answering 429, latency and faults, and PATCH write-back with
// work notes kept (see ../../../../shared/reference/servicenow.md).
//
// It serves plain HTTP on 127.0.0.1; GET /_emulator/state and
// GET /_emulator/stats are unauthenticated inspection endpoints.
package sntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure an emulator. The zero value serves an empty instance
// with generated credentials.
type Options struct {
	User, Password string // Basic auth and the OAuth password grant; generated when empty
	// ClientID and ClientSecret enable OAuth on /oauth_token.do (the secret
	// is generated when only the id is set).
	ClientID, ClientSecret string
	// NoClientCredentials refuses the client_credentials grant, as an
	// instance without glide.oauth.inbound.client.credential.grant_type.enabled does.
	NoClientCredentials bool
	TokenTTL            time.Duration // access token lifetime; default 1800s

	Seed         *Seed
	Generate     int   // synthetic requests added after Seed
	GenerateSeed int64 // makes Generate deterministic

	PageCap   int           // at most this many records per response, whatever sysparm_limit says (0: none)
	Latency   time.Duration // added to every Table API request
	RateLimit RateLimit     // zero: no limit
	FaultRate float64       // probability of a fault (500, 503 or a dropped connection) per Table API request
	FaultSeed int64

	// Hidden lists sys_ids that an ACL hides: counted in X-Total-Count but
	// never returned, so pages come back short (limit is applied before ACLs).
	Hidden []string
	// DenyWrite lists sc_req_item sys_ids whose PATCH fails with 403 (ACL).
	DenyWrite []string
	// NoVariablesField makes variables.X in sysparm_fields ignored, as an
	// instance may do: the variable must then be read via sc_item_option_mtom.
	NoVariablesField bool

	// BeforeTableRequest, when set, runs before each Table API request is
	// served (after authentication); tests use it to revoke tokens mid-run.
	BeforeTableRequest func(r *http.Request)

	Logger *slog.Logger
	Now    func() time.Time // clock for sys_updated_on and tokens; default time.Now
}

// Server is a running emulator.
type Server struct {
	opts    Options
	log     *slog.Logger
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	limiter *limiter

	mu     sync.Mutex // guards db, tokens, rng
	db     *db
	tokens map[string]token // access and refresh tokens
	rng    *mrand.Rand
	hidden map[string]bool
	deny   map[string]bool

	stats      statsCounters
	inflight   atomic.Int64
	closeOnce  sync.Once
	closeError error
}

type token struct {
	refresh bool
	expires time.Time
}

// NewServer starts an emulator on 127.0.0.1 at a free port.
func NewServer(opts Options) (*Server, error) { return Listen("127.0.0.1:0", opts) }

// Listen starts an emulator on addr.
func Listen(addr string, opts Options) (*Server, error) {
	if opts.User == "" {
		opts.User = "duosync.integration"
	}
	if opts.Password == "" {
		opts.Password = randomHex(12)
	}
	if opts.ClientID != "" && opts.ClientSecret == "" {
		opts.ClientSecret = randomHex(16)
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 1800 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FaultRate < 0 || opts.FaultRate > 1 {
		return nil, fmt.Errorf("fault rate %v: want 0..1", opts.FaultRate)
	}
	s := &Server{opts: opts, log: opts.Logger, db: newDB(), tokens: map[string]token{},
		rng:    mrand.New(mrand.NewPCG(uint64(opts.FaultSeed), 0xfa17)),
		hidden: setOf(opts.Hidden), deny: setOf(opts.DenyWrite), done: make(chan struct{})}
	s.stats.byEndpoint = map[string]int64{}
	if opts.RateLimit.Requests > 0 {
		s.limiter = &limiter{spec: opts.RateLimit, now: opts.Now}
	}
	if opts.Seed != nil {
		if err := s.db.load(opts.Seed); err != nil {
			return nil, err
		}
	}
	if opts.Generate > 0 {
		gen := Generate(opts.Generate, opts.GenerateSeed)
		if err := s.db.load(gen); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("servicenow emulator stopped", "err", err)
		}
	}()
	return s, nil
}

func setOf(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// URL is the instance URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// User is the Basic auth user name.
func (s *Server) User() string { return s.opts.User }

// Password is the Basic auth password.
func (s *Server) Password() string { return s.opts.Password }

// ClientID and ClientSecret are the OAuth client, empty when OAuth is off.
func (s *Server) ClientID() string     { return s.opts.ClientID }
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// ReadyLine is the one JSON line DESIGN.md specifies for a listening emulator.
func (s *Server) ReadyLine() []byte {
	line := map[string]string{"url": s.URL(), "user": s.opts.User, "password": s.opts.Password}
	if s.opts.ClientID != "" {
		line["client_id"], line["client_secret"] = s.opts.ClientID, s.opts.ClientSecret
	}
	b, _ := json.Marshal(line)
	return append(b, '\n')
}

// Close stops the server, closing open connections.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeError = s.srv.Close()
		}
		<-s.done
	})
	return s.closeError
}

// RevokeTokens makes every OAuth access token expire now; refresh tokens stay valid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		if !t.refresh {
			delete(s.tokens, k)
		}
	}
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.stats.peak(n)

	switch {
	case r.URL.Path == "/_emulator/state":
		writeJSON(w, http.StatusOK, s.State())
		return
	case r.URL.Path == "/_emulator/stats":
		writeJSON(w, http.StatusOK, s.Stats())
		return
	case r.URL.Path == "/oauth_token.do":
		s.stats.count("POST oauth_token.do")
		s.serveToken(w, r)
		return
	}
	tableName, sysID, ok := parseTablePath(r.URL.Path)
	if !ok {
		s.stats.count("other")
		writeError(w, http.StatusBadRequest, "Requested URI does not represent any resource", "")
		return
	}
	version := ""
	if strings.HasPrefix(r.URL.Path, "/api/now/v1/") {
		version = "v1"
	}
	endpoint := r.Method + " " + tableName
	if sysID != "" {
		endpoint += "/{sys_id}"
	}
	s.stats.count(endpoint)

	if !s.authenticate(r) {
		s.stats.unauthorized.Add(1)
		writeError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	if s.limiter != nil {
		if wait, denied := s.limiter.take(); denied {
			s.stats.rateLimited.Add(1)
			s.limiter.headers(w)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "Rate limit exceeded",
				fmt.Sprintf("Rate limit of %d requests per %s for Table API exceeded",
					s.opts.RateLimit.Requests, s.opts.RateLimit.periodName()))
			return
		}
		s.limiter.headers(w)
	}
	if s.opts.Latency > 0 {
		select {
		case <-time.After(s.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	if s.opts.BeforeTableRequest != nil {
		s.opts.BeforeTableRequest(r)
	}
	fault := s.fault()
	switch fault {
	case "500":
		writeError(w, http.StatusInternalServerError, "Transaction cancelled: maximum execution time exceeded",
			"Transaction cancelled: maximum execution time exceeded Check logs for error trace or enable glide.rest.debug property to verify REST request processing")
		return
	case "503":
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>")
		return
	case "drop":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			drop(w)
			return
		}
		// A write is applied, then its answer lost: the outcome is unknown to the client.
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPatch && r.Method != http.MethodPut {
		writeError(w, http.StatusMethodNotAllowed, "Method not Supported", "Method "+r.Method+" is not supported by the emulator")
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		if r.Header.Get("Accept") == "" {
			writeError(w, http.StatusBadRequest, "Accept header is required", "")
		} else {
			writeError(w, http.StatusNotAcceptable, "Not Acceptable", "Only application/json is served")
		}
		return
	}
	s.mu.Lock()
	t := s.db.tables[tableName]
	s.mu.Unlock()
	if t == nil {
		writeError(w, http.StatusBadRequest, "Invalid table "+tableName, "")
		return
	}
	switch {
	case r.Method == http.MethodPatch || r.Method == http.MethodPut:
		if sysID == "" {
			writeError(w, http.StatusMethodNotAllowed, "Method not Supported", "PATCH needs a sys_id")
			return
		}
		s.servePatch(w, r, t, sysID, fault == "drop")
	case sysID != "":
		s.serveRecord(w, r, t, sysID)
	default:
		s.serveList(w, r, t, version)
	}
}

func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// parseTablePath accepts /api/now/table/{t}[/{sys_id}] and the /v1/ and /v2/ forms.
func parseTablePath(p string) (table, sysID string, ok bool) {
	rest, found := strings.CutPrefix(p, "/api/now/")
	if !found {
		return "", "", false
	}
	if v, r, cut := strings.Cut(rest, "/"); cut && (v == "v1" || v == "v2") {
		rest = r
	}
	rest, found = strings.CutPrefix(rest, "table/")
	if !found || rest == "" {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1:
		return parts[0], "", true
	case len(parts) == 2 && parts[1] != "":
		return parts[0], parts[1], true
	}
	return "", "", false
}

func acceptsJSON(accept string) bool {
	if accept == "" {
		return false
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

func (s *Server) fault() string {
	if s.opts.FaultRate <= 0 {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Float64() >= s.opts.FaultRate {
		return ""
	}
	s.stats.faults.Add(1)
	return []string{"500", "503", "drop"}[s.rng.IntN(3)]
}

func (s *Server) authenticate(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if bearer, ok := strings.CutPrefix(h, "Bearer "); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		t, found := s.tokens[bearer]
		return found && !t.refresh && s.opts.Now().Before(t.expires)
	}
	u, p, ok := r.BasicAuth()
	return ok && u == s.opts.User && p == s.opts.Password
}

// params are the sysparm_ options of a request.
type params struct {
	mode   string // false, true, all
	excl   bool
	fields []string
}

func readParams(q url.Values) (params, error) {
	p := params{mode: strings.ToLower(q.Get("sysparm_display_value"))}
	switch p.mode {
	case "":
		p.mode = "false"
	case "false", "true", "all":
	default:
		return p, fmt.Errorf("invalid sysparm_display_value %q", q.Get("sysparm_display_value"))
	}
	p.excl = strings.EqualFold(q.Get("sysparm_exclude_reference_link"), "true")
	for _, f := range strings.Split(q.Get("sysparm_fields"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			p.fields = append(p.fields, f)
		}
	}
	return p, nil
}

// render shapes one row as a JSON object under p.
func (s *Server) render(base string, t *table, row map[string]string, p params) map[string]any {
	fields := p.fields
	if len(fields) == 0 {
		fields = t.allFields()
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if s.opts.NoVariablesField && strings.HasPrefix(f, "variables.") {
			continue
		}
		res, ok := s.db.resolve(t, row, f)
		if !ok {
			continue // unknown fields are left out
		}
		link := ""
		if res.refTable != "" {
			link = base + "/api/now/table/" + res.refTable + "/" + res.raw
		}
		out[f] = shape(res, p.mode, p.excl, link)
	}
	return out
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, t *table, version string) {
	q := r.URL.Query()
	p, err := readParams(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	limit, offset := 10000, 0
	if v := q.Get("sysparm_limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			writeError(w, http.StatusBadRequest, "Invalid sysparm_limit "+v, "")
			return
		}
	}
	if v := q.Get("sysparm_offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			writeError(w, http.StatusBadRequest, "Invalid sysparm_offset "+v, "sysparm_offset must not be negative")
			return
		}
	}
	if s.opts.PageCap > 0 && limit > s.opts.PageCap {
		limit = s.opts.PageCap
	}
	query, err := parseQuery(q.Get("sysparm_query"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid query", err.Error())
		return
	}

	base := "http://" + r.Host
	s.mu.Lock()
	var matched []map[string]string
	for _, row := range t.rows {
		get := func(f string) (string, bool) {
			res, ok := s.db.resolve(t, row, f)
			return res.raw, ok
		}
		if query.match(get) {
			matched = append(matched, row)
		}
	}
	query.sortRows(matched, func(row map[string]string, f string) string {
		res, _ := s.db.resolve(t, row, f)
		return res.raw
	})
	total := len(matched)
	result := []map[string]any{}
	for i := offset; i < total && i < offset+limit; i++ {
		if s.hidden[matched[i]["sys_id"]] {
			continue // limit is applied before ACL evaluation
		}
		result = append(result, s.render(base, t, matched[i], p))
	}
	s.mu.Unlock()

	if version == "v1" && len(result) == 0 {
		writeError(w, http.StatusNotFound, "No Record found", "Records not found")
		return
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	if !strings.EqualFold(q.Get("sysparm_suppress_pagination_header"), "true") {
		w.Header().Set("Link", linkHeader(base, r.URL, offset, limit, total))
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": result})
}

// linkHeader builds ServiceNow's Link header: the request's path and
// parameters with sysparm_offset and sysparm_limit rewritten, comma-joined.
func linkHeader(base string, u *url.URL, offset, limit, total int) string {
	at := func(off int, rel string) string {
		q := u.Query()
		q.Set("sysparm_offset", strconv.Itoa(off))
		q.Set("sysparm_limit", strconv.Itoa(limit))
		return "<" + base + u.Path + "?" + q.Encode() + `>;rel="` + rel + `"`
	}
	last := 0
	if total > 0 {
		last = (total - 1) / limit * limit
	}
	links := []string{at(0, "first")}
	if offset > 0 {
		links = append(links, at(max(offset-limit, 0), "prev"))
	}
	if offset+limit < total {
		links = append(links, at(offset+limit, "next"))
	}
	links = append(links, at(last, "last"))
	return strings.Join(links, ",")
}

func (s *Server) serveRecord(w http.ResponseWriter, r *http.Request, t *table, sysID string) {
	p, err := readParams(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	s.mu.Lock()
	row := t.get(sysID)
	var out map[string]any
	if row != nil && !s.hidden[sysID] {
		out = s.render("http://"+r.Host, t, row, p)
	}
	s.mu.Unlock()
	if out == nil {
		writeError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

const maxPatchBody = 1 << 20

func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, t *table, sysID string, dropAfter bool) {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "application/json":
	case "":
		writeError(w, http.StatusBadRequest, "Content-Type header is required", "")
		return
	default:
		writeError(w, http.StatusUnsupportedMediaType, "Unsupported Media Type", "Content-Type "+ct+" is not supported")
		return
	}
	p, err := readParams(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPatchBody+1))
	if err != nil || len(body) > maxPatchBody {
		writeError(w, http.StatusBadRequest, "Exception while reading request", "body unreadable or too large")
		return
	}
	var patch map[string]any
	if err := json.Unmarshal(body, &patch); err != nil || patch == nil {
		writeError(w, http.StatusBadRequest, "Exception while reading request", "Invalid payload: expected a JSON object")
		return
	}

	s.mu.Lock()
	row := t.get(sysID)
	if row == nil || s.hidden[sysID] {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
		return
	}
	if s.deny[sysID] {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Operation Failed", "ACL Exception Update Failed due to security constraints")
		return
	}
	now := s.opts.Now().UTC().Format(timeLayout)
	for f, v := range patch {
		value := scalarString(v)
		switch {
		case strings.HasPrefix(f, "sys_") || !t.fields[f]:
			// read-only or unknown fields are ignored, as on ServiceNow
		case t.journal[f]:
			if value != "" {
				s.db.tables["sys_journal_field"].insert(map[string]string{
					"sys_id": randomHex(16), "name": t.name, "element": f, "element_id": sysID,
					"value": value, "sys_created_on": now, "sys_created_by": s.opts.User})
			}
		default:
			row[f] = value
		}
	}
	row["sys_updated_on"] = now
	mod, _ := strconv.Atoi(row["sys_mod_count"])
	row["sys_mod_count"] = strconv.Itoa(mod + 1)
	out := s.render("http://"+r.Host, t, row, p)
	s.mu.Unlock()
	s.stats.patches.Add(1)

	if dropAfter {
		drop(w)
		return
	}
	if strings.EqualFold(r.Header.Get("X-no-response-body"), "true") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError writes ServiceNow's error body; detail "" is sent as null.
func writeError(w http.ResponseWriter, status int, message, detail string) {
	var d any
	if detail != "" {
		d = detail
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "detail": d}, "status": "failure"})
}
