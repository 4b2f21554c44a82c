package duo

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"golang.org/x/time/rate"
)

// Defaults applied by New when a Config field is zero.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 6
	DefaultConcurrency = 8
	DefaultRetryBase   = 500 * time.Millisecond
	DefaultRetryMax    = 30 * time.Second

	// Duo's unpublished budgets, as stated by a Duo engineer
	// (duo_client_python#101). Not applied by default: pass them in
	// Config.ReadsPerMinute / WritesPerMinute to pace a large run below
	// Duo's limits instead of relying on the shared 429 pause.
	DuoReadsPerMinute  = 200
	DuoWritesPerMinute = 300
)

// Config configures a Client. Only Host, IKey and SKey are required.
type Config struct {
	Host   string // API hostname, "api-xxxx.duosecurity.com" or "host:port"
	IKey   string // integration key
	SKey   string // secret key: never logged, never in an error
	CAFile string // extra PEM CA bundle, added to Duo's pinned CAs (never replaces them)

	Timeout time.Duration // per HTTP attempt; 0 = DefaultTimeout

	// Client-side pacing shared by every goroutine using the Client.
	// 0 = unlimited (the shared 429 pause still applies); see
	// DuoReadsPerMinute / DuoWritesPerMinute for Duo's own budgets.
	ReadsPerMinute, WritesPerMinute int

	MaxAttempts int // per call, first try included; 0 = DefaultMaxAttempts
	Concurrency int // concurrent page reads and lookups; 0 = DefaultConcurrency

	// Backoff between retries: RetryBase doubled per attempt, capped at
	// RetryMax, with full jitter. 0 = the defaults. Tests make them small.
	RetryBase, RetryMax time.Duration

	Logger    *slog.Logger // nil = discard
	UserAgent string       // prepended to duo_api_golang's own
}

// String redacts the secret key, so that printing a Config is safe.
func (c Config) String() string {
	return fmt.Sprintf("duo.Config{Host:%q IKey:%q SKey:%s CAFile:%q}", c.Host, c.IKey, redacted(c.SKey), c.CAFile)
}

// GoString redacts the secret key from %#v too.
func (c Config) GoString() string { return c.String() }

// LogValue redacts the secret key when a Config is logged with slog.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.String("ikey", c.IKey),
		slog.String("skey", redacted(c.SKey)),
		slog.String("ca_file", c.CAFile),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[REDACTED]"
}

// Client is a Duo Admin API client, safe for concurrent use. All goroutines
// share one rate limiter per direction and one 429 pause.
type Client struct {
	// api signs requests. Each call works on a shallow copy of it whose HTTP
	// client carries that call's context (see callTransport); the copy
	// shares the secret key and the connection pool.
	api       *duoapi.DuoApi
	transport http.RoundTripper
	host      string
	log       *slog.Logger

	timeout     time.Duration
	maxAttempts int
	concurrency int
	retryBase   time.Duration
	retryMax    time.Duration

	readLimit  *rate.Limiter // nil = unlimited
	writeLimit *rate.Limiter
	pause      pause

	stats stats
}

// New checks cfg and builds a Client. It makes no network call.
func New(cfg Config) (*Client, error) {
	if err := validateConfig(cfg); err != nil {
		return nil, err
	}
	var extraCAs []byte
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("duo ca_file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("duo ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		extraCAs = pem
	}

	c := &Client{
		host:        cfg.Host,
		log:         cfg.Logger,
		timeout:     orDefault(cfg.Timeout, DefaultTimeout),
		maxAttempts: orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		concurrency: orDefault(cfg.Concurrency, DefaultConcurrency),
		retryBase:   orDefault(cfg.RetryBase, DefaultRetryBase),
		retryMax:    orDefault(cfg.RetryMax, DefaultRetryMax),
		readLimit:   limiter(cfg.ReadsPerMinute),
		writeLimit:  limiter(cfg.WritesPerMinute),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}

	// duo_api_golang builds its transport with Duo's pinned CA pool and the
	// environment's proxy; SetTransport hands us that transport before use,
	// so the custom CA is appended to the pinned pool (never replacing it,
	// never disabling verification) and the connection pool is sized for
	// our concurrency.
	var tr *http.Transport
	c.api = duoapi.NewDuoApi(cfg.IKey, cfg.SKey, cfg.Host, cfg.UserAgent,
		duoapi.SetProxy(http.ProxyFromEnvironment),
		duoapi.SetTransport(func(t *http.Transport) {
			if extraCAs != nil {
				t.TLSClientConfig.RootCAs.AppendCertsFromPEM(extraCAs)
			}
			t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
			t.TLSHandshakeTimeout = 10 * time.Second
			t.MaxIdleConns = 4 * c.concurrency
			t.MaxIdleConnsPerHost = 4 * c.concurrency
			t.IdleConnTimeout = 90 * time.Second
			tr = t
		}),
	)
	c.transport = tr
	return c, nil
}

// CloseIdleConnections releases the kept-alive connections to Duo, e.g.
// between the runs of a long-lived scheduler.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

func validateConfig(cfg Config) error {
	var missing []string
	if strings.TrimSpace(cfg.Host) == "" {
		missing = append(missing, "host")
	}
	if strings.TrimSpace(cfg.IKey) == "" {
		missing = append(missing, "ikey")
	}
	if cfg.SKey == "" {
		missing = append(missing, "skey")
	}
	if len(missing) > 0 {
		return fmt.Errorf("duo config: missing %s", strings.Join(missing, ", "))
	}
	if strings.ContainsAny(cfg.Host, "/ \t\r\n?#@") {
		return fmt.Errorf("duo config: host %q must be a hostname or host:port, without scheme or path", cfg.Host)
	}
	if cfg.Timeout < 0 || cfg.MaxAttempts < 0 || cfg.Concurrency < 0 ||
		cfg.ReadsPerMinute < 0 || cfg.WritesPerMinute < 0 || cfg.RetryBase < 0 || cfg.RetryMax < 0 {
		return errors.New("duo config: timeouts, attempts, concurrency and rates must not be negative")
	}
	return nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// limiter paces calls to perMinute with a burst of one second's worth.
func limiter(perMinute int) *rate.Limiter {
	if perMinute <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/60))
}

// pause is the one wait every worker honours after any call got a 429:
// Duo's limits are per account, so one worker being throttled means all are.
type pause struct {
	mu          sync.Mutex
	until       time.Time
	consecutive int // 429s since the last success, for the pause's length
}

// hit extends the shared pause after a 429 and returns its end.
func (p *pause) hit(base, ceiling time.Duration, retryAfter time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.consecutive++
	d := backoff(base, ceiling, p.consecutive-1)
	d = d/2 + jitter(d/2) // keep at least half: the whole account is throttled
	if retryAfter > d {
		d = retryAfter
	}
	if end := time.Now().Add(d); end.After(p.until) {
		p.until = end
	}
	return p.until
}

func (p *pause) ok() {
	p.mu.Lock()
	p.consecutive = 0
	p.mu.Unlock()
}

func (p *pause) end() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.until
}
