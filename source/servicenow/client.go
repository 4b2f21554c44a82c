// Package servicenow reads approved requested items (RITMs) from the
// ServiceNow Table API and writes work notes back to them.
//
// Paging is by offset with a unique ORDERBYsys_id and ends by X-Total-Count,
// never by a short page: ServiceNow applies sysparm_limit before ACLs, so
// pages can be short or empty while more rows exist. GETs (and the OAuth
// token call) are retried on 429, 5xx and transport errors; a PATCH is never
// retried once it may have been applied.
package servicenow

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultFields are DESIGN.md's default export columns, minus the catalog
// variable (read through sc_item_option_mtom, see Config.GroupVariable), plus
// requested_for.active, which the approval filter uses.
var DefaultFields = []string{"number", "sys_id", "approval", "state", "cat_item",
	"requested_for.user_name", "requested_for.email", "requested_for.first_name",
	"requested_for.last_name", "requested_for.name", "requested_for.active", "sys_updated_on"}

// Config configures a Client.
type Config struct {
	Instance string // https://x.service-now.com (http:// only to a loopback address: the emulator)
	// User and Password authenticate with Basic auth, or with the OAuth
	// password grant when ClientID is set.
	User, Password string
	// ClientID and ClientSecret enable OAuth 2 on /oauth_token.do: the
	// password grant when User is set, else client_credentials. Tokens are
	// renewed with the refresh_token grant when one was issued.
	ClientID, ClientSecret string

	Table string // default sc_req_item
	// Query is the sysparm_query (an encoded query); ^ORDERBYsys_id is
	// appended for stable paging.
	Query string
	// Fields is sysparm_fields, dot-walks allowed; default DefaultFields.
	// sys_id and sys_updated_on are always requested.
	Fields []string
	// GroupVariable is the catalog variable holding the Duo group
	// (default "duo_group"). It is read through sc_item_option_mtom unless
	// Fields lists "variables.<name>" and the instance answers it; set
	// VariablesViaMTOM to always use sc_item_option_mtom. "-" disables it.
	GroupVariable    string
	VariablesViaMTOM bool
	// DisplayValue is sysparm_display_value: "all" (default), "true" or
	// "false". See flattenRecord for what each gives in Request.Fields.
	DisplayValue         string
	ExcludeReferenceLink bool // sysparm_exclude_reference_link
	PageSize             int  // sysparm_limit per page; default 1000
	// UpdatedSince is a watermark, raw UTC "YYYY-MM-DD HH:MM:SS": only
	// records with sys_updated_on >= it are read (FetchInfo.MaxUpdated is the next one).
	UpdatedSince string

	CAFile     string       // extra CA bundle (PEM) for a TLS instance; not with HTTPClient
	HTTPClient *http.Client // default: a client with a 90s timeout and no cookie jar
	Logger     *slog.Logger
	// MaxAttempts bounds the tries of one GET (default 5).
	MaxAttempts int
	// RetryBaseDelay is the first backoff after a 5xx or transport error
	// (default 500ms; doubled per attempt, with jitter, at most 30s).
	RetryBaseDelay time.Duration
	// MaxRetryAfter is the longest Retry-After honoured (default 15m);
	// a longer one fails the call instead of stalling the run.
	MaxRetryAfter time.Duration
}

// Client talks to one ServiceNow instance. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	origin  string // the instance URL, for Request.Origin
	http    *http.Client
	log     *slog.Logger
	oauth   *tokenSource // nil with Basic auth
	secrets []string     // never to appear in an error or a log line
	fields  []string     // sysparm_fields sent
	varName string       // "" when no catalog variable is read
	varMode string       // "field", "mtom" or "field+mtom" (field, falling back to mtom)

	stats counters
}

var (
	tableName   = regexp.MustCompile(`^[a-z0-9_]+$`)
	varNameRe   = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	sysIDRe     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	fieldNameRe = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	watermarkRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
)

// New checks cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	base, err := parseInstance(cfg.Instance)
	if err != nil {
		return nil, err
	}
	if cfg.Table == "" {
		cfg.Table = "sc_req_item"
	}
	if !tableName.MatchString(cfg.Table) {
		return nil, fmt.Errorf("servicenow table %q: want a table name like sc_req_item", cfg.Table)
	}
	switch cfg.DisplayValue {
	case "":
		cfg.DisplayValue = "all"
	case "all", "true", "false":
	default:
		return nil, fmt.Errorf("servicenow display value %q: want all, true or false", cfg.DisplayValue)
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 1000
	}
	if cfg.PageSize < 1 || cfg.PageSize > 10000 {
		return nil, fmt.Errorf("servicenow page size %d: want 1..10000", cfg.PageSize)
	}
	if cfg.UpdatedSince != "" {
		if !watermarkRe.MatchString(cfg.UpdatedSince) {
			return nil, fmt.Errorf("servicenow updated-since %q: want UTC \"YYYY-MM-DD HH:MM:SS\"", cfg.UpdatedSince)
		}
		if _, err := time.Parse("2006-01-02 15:04:05", cfg.UpdatedSince); err != nil {
			return nil, fmt.Errorf("servicenow updated-since %q: %w", cfg.UpdatedSince, err)
		}
	}
	if cfg.User == "" && cfg.ClientID == "" {
		return nil, errors.New("servicenow: no credentials: set a user (Basic auth) or an OAuth client id")
	}
	if cfg.User != "" && cfg.Password == "" {
		return nil, fmt.Errorf("servicenow user %q: no password (SN_PASSWORD or password_file)", cfg.User)
	}
	if cfg.ClientID != "" && cfg.ClientSecret == "" {
		return nil, errors.New("servicenow OAuth client id set without a client secret (SN_CLIENT_SECRET or client_secret_file)")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = 500 * time.Millisecond
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	switch {
	case hc != nil && cfg.CAFile != "":
		return nil, errors.New("servicenow: CAFile and HTTPClient are exclusive; put the CA in the client's transport")
	case hc == nil:
		hc, err = defaultHTTPClient(cfg.CAFile)
		if err != nil {
			return nil, err
		}
	}

	c := &Client{cfg: cfg, base: base, origin: strings.TrimRight(base.String(), "/"), http: hc, log: cfg.Logger}
	for _, s := range []string{cfg.Password, cfg.ClientSecret} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	if err := c.planFields(); err != nil {
		return nil, err
	}
	if cfg.ClientID != "" {
		c.oauth = &tokenSource{c: c}
	}
	return c, nil
}

func parseInstance(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("servicenow instance URL is empty (SN_INSTANCE)")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("servicenow instance URL: %w", err)
	}
	if u.User != nil {
		return nil, errors.New("servicenow instance URL must not carry credentials; use the user and password settings")
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("servicenow instance URL %q: want https://INSTANCE.service-now.com", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		// Credentials in clear text only to this machine (the emulator).
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("servicenow instance %q: plain http is only allowed to a loopback address", u.Host)
		}
	default:
		return nil, fmt.Errorf("servicenow instance URL scheme %q: want https", u.Scheme)
	}
	u.Path = ""
	return u, nil
}

func defaultHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("servicenow CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("servicenow CA file %s: no PEM certificate found", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// No cookie jar: requests sharing a session cookie are serialised by the instance.
	return &http.Client{Transport: tr, Timeout: 90 * time.Second}, nil
}

// planFields decides sysparm_fields and how the catalog variable is read.
func (c *Client) planFields() error {
	fields := c.cfg.Fields
	if len(fields) == 0 {
		fields = DefaultFields
	}
	seen := map[string]bool{}
	for _, f := range append(append([]string{}, fields...), "sys_id", "sys_updated_on") {
		f = strings.TrimSpace(f)
		if f == "" || seen[f] {
			continue
		}
		if !fieldNameRe.MatchString(f) {
			return fmt.Errorf("servicenow field %q: want a field name or dot-walk like requested_for.email", f)
		}
		seen[f] = true
		c.fields = append(c.fields, f)
	}
	switch v := c.cfg.GroupVariable; {
	case v == "-":
		return nil
	case v == "":
		c.varName = "duo_group"
	case !varNameRe.MatchString(v):
		return fmt.Errorf("servicenow group variable %q: want a catalog variable name like duo_group", v)
	default:
		c.varName = v
	}
	switch {
	case c.cfg.VariablesViaMTOM || !seen["variables."+c.varName]:
		c.varMode = "mtom"
	default:
		c.varMode = "field+mtom"
	}
	if c.varMode == "mtom" && seen["variables."+c.varName] {
		// Read it one way only.
		out := c.fields[:0]
		for _, f := range c.fields {
			if f != "variables."+c.varName {
				out = append(out, f)
			}
		}
		c.fields = out
	}
	return nil
}

// redact removes secrets (passwords, client secret, tokens) from a text.
func (c *Client) redact(s string) string {
	for _, sec := range c.allSecrets() {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

func (c *Client) allSecrets() []string {
	out := append([]string{}, c.secrets...)
	if c.oauth != nil {
		out = append(out, c.oauth.current()...)
	}
	return out
}

// Stats are the client's counters, for the run report.
type Stats struct {
	Requests       int64 `json:"requests"`
	Retries        int64 `json:"retries"`
	RateLimited    int64 `json:"rate_limited"` // 429 answers
	TokenRequests  int64 `json:"token_requests"`
	Pages          int64 `json:"pages"`
	Records        int64 `json:"records"` // records emitted by Fetch
	VariableCalls  int64 `json:"variable_calls"`
	WriteBacks     int64 `json:"write_backs"`
	WriteBackFails int64 `json:"write_back_failures"`
}

type counters struct {
	requests, retries, rateLimited, tokenRequests, pages, records, variableCalls, writeBacks, writeBackFails atomic.Int64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{Requests: s.requests.Load(), Retries: s.retries.Load(), RateLimited: s.rateLimited.Load(),
		TokenRequests: s.tokenRequests.Load(), Pages: s.pages.Load(), Records: s.records.Load(),
		VariableCalls: s.variableCalls.Load(), WriteBacks: s.writeBacks.Load(), WriteBackFails: s.writeBackFails.Load()}
}

// Instance is the instance URL, as used in Request.Origin.File.
func (c *Client) Instance() string { return c.origin }

// Query is the encoded query Fetch sends, for the report header.
func (c *Client) Query() string { return c.query() }
