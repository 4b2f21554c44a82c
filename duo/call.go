package duo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// How duo_api_golang is used, and why not more of it (see
// ../shared/reference/duo-admin-api.md §4, §5):
//
//   - SignedCall signs (v2, HMAC-SHA512) and sends each attempt, so every
//     attempt has a fresh Date and signature and a freshly built body.
//   - Its own 429 loop must never run: it re-sends a POST with an empty
//     body and the stale Date. callTransport turns every 429 into an error
//     before the library sees the response, so the library returns at once
//     and the retry happens here.
//   - It takes no context: each call runs on a shallow copy of the DuoApi
//     whose http.Client carries that call's context (callTransport).
//   - Its admin package is not used for requests: its paging (retrieveItems)
//     reverses page order, is quadratic and returns partial data with a nil
//     error; it never checks stat or the HTTP status, and its User type lacks
//     aliases. Answers are decoded here and checked for both.

// request is one logical Admin API call.
type request struct {
	method   string
	path     string
	endpoint string // path with ids replaced by {id}, for Stats and logs
	params   url.Values
	// idempotent calls (reads, memberships, modifications) are retried
	// even when an attempt's outcome is unknown; others return an error
	// wrapping ErrOutcomeUnknown so the caller can verify with a read.
	idempotent bool
	// out points to where Duo's "response" is decoded; nil = discarded.
	out any
}

func (r request) write() bool { return r.method != http.MethodGet }

// envelope is Duo's answer: {"stat":"OK","response":…,"metadata":…} or
// {"stat":"FAIL","code":N,"message":"…","message_detail":"…"}.
type envelope struct {
	Stat          string          `json:"stat"`
	Code          json.RawMessage `json:"code"`
	Message       string          `json:"message"`
	MessageDetail string          `json:"message_detail"`
	Response      any             `json:"response"` // decoded into request.out
	Metadata      *metadata       `json:"metadata"`
}

type metadata struct {
	NextOffset   *flexInt `json:"next_offset"`
	TotalObjects *flexInt `json:"total_objects"`
}

// flexInt accepts 300 and "300": Duo's v1 and v2 endpoints differ.
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*n = flexInt(v)
	return nil
}

// outcomeUnknownError is a write that was sent and got no usable answer.
type outcomeUnknownError struct {
	method, path string
	cause        error
}

func (e *outcomeUnknownError) Error() string {
	return fmt.Sprintf("duo %s %s: %v: %v", e.method, e.path, ErrOutcomeUnknown, e.cause)
}

func (e *outcomeUnknownError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.cause} }

// rateLimitedError is how callTransport reports a 429 to duo_api_golang,
// which then returns at once instead of re-sending a broken request.
type rateLimitedError struct {
	retryAfter time.Duration
	body       []byte
}

func (e *rateLimitedError) Error() string { return "HTTP 429 Too Many Requests" }

// outcome classifies one attempt.
type outcome int

const (
	done      outcome = iota // success, or a definite failure not worth retrying
	retry                    // a definite failure worth retrying (5xx, not sent)
	throttled                // 429: pause everyone, then retry
	unknown                  // sent, no usable answer
)

// maxBody bounds one answer, which is held whole in memory while it is
// decoded, by up to Concurrency reads at once. The largest answer duosync
// asks for is a page of 300 users: about 250 KB from the emulator (groups
// included) and, with several phones, tokens and groups per user, still
// under 2 MB. 16 MiB leaves ample headroom for that while keeping 8
// concurrent reads well under a few hundred MB even when a proxy or a
// broken server streams something far larger.
const maxBody = 16 << 20

// answerTooLargeError is an answer cut off at maxBody. Reads fail on it at
// once: asking again would only fetch the same oversized answer.
type answerTooLargeError struct{ limit int64 }

func (e *answerTooLargeError) Error() string {
	return fmt.Sprintf("answer larger than the client's limit of %d MiB", e.limit>>20)
}

// do runs req with retries and returns Duo's "response" and "metadata".
func (c *Client) do(ctx context.Context, req request) (*envelope, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.stats.retries.Add(1)
		}
		if err := c.wait(ctx, req.write()); err != nil {
			return nil, c.fail(attempt, fmt.Errorf("duo %s %s: %w", req.method, req.path, err))
		}
		start := time.Now()
		env, kind, retryAfter, err := c.attempt(ctx, req)
		c.log.Debug("duo call", "method", req.method, "endpoint", req.endpoint, "attempt", attempt,
			"ms", time.Since(start).Milliseconds(), "error", errString(err))
		if err == nil {
			c.pause.ok()
			return env, nil
		}
		lastErr = err
		var pauseEnd time.Time
		if kind == throttled {
			// Pause everyone first, whatever this call does next.
			pauseEnd = c.pause.hit(c.retryBase, c.retryMax, retryAfter)
			c.stats.rateLimited.Add(1)
		}
		if ctx.Err() != nil { // the caller gave up: no retry, whatever the cause
			if kind == unknown {
				c.stats.unknown.Add(1)
			}
			return nil, c.fail(attempt, err)
		}
		switch kind {
		case done:
			return nil, c.fail(attempt, err)
		case unknown:
			c.stats.unknown.Add(1)
			if !req.idempotent {
				return nil, c.fail(attempt, err)
			}
		}
		if attempt >= c.maxAttempts {
			return nil, c.fail(attempt, fmt.Errorf("after %d attempts: %w", attempt, lastErr))
		}
		var wait time.Duration
		if kind == throttled {
			wait = time.Until(pauseEnd)
		} else {
			d := backoff(c.retryBase, c.retryMax, attempt-1)
			wait = d/2 + jitter(d/2)
		}
		c.log.Warn("duo call retry", "method", req.method, "endpoint", req.endpoint,
			"attempt", attempt, "wait_ms", wait.Milliseconds(), "error", err.Error())
		if err := sleep(ctx, wait); err != nil {
			return nil, c.fail(attempt, fmt.Errorf("duo %s %s: %w (after: %v)", req.method, req.path, err, lastErr))
		}
	}
}

func (c *Client) fail(attempts int, err error) error {
	c.stats.failed.Add(1)
	return &attemptsError{attempts: attempts, err: err}
}

// attemptsError records how many attempts a failed call made, for reports.
type attemptsError struct {
	attempts int
	err      error
}

func (e *attemptsError) Error() string { return e.err.Error() }
func (e *attemptsError) Unwrap() error { return e.err }

// Attempts returns how many attempts the failed call behind err made (0
// when err did not come from a Duo call).
func Attempts(err error) int {
	var ae *attemptsError
	if errors.As(err, &ae) {
		return ae.attempts
	}
	return 0
}

// attempt makes one signed HTTP request.
func (c *Client) attempt(ctx context.Context, req request) (*envelope, outcome, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ct := &callTransport{ctx: actx, base: c.transport}
	api := *c.api // shallow copy: same keys, this call's HTTP client
	api.SetCustomHTTPClient(&http.Client{
		Transport: ct,
		// Duo does not redirect; following one would re-send a signed
		// request somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	})

	c.stats.call(req.method + " " + req.endpoint)
	resp, body, err := api.SignedCall(req.method, req.path, cloneValues(req.params))
	if err != nil {
		return c.transportFailure(ctx, actx, req, ct.sent.Load(), err)
	}
	env, kind, err := decode(req, resp.StatusCode, body)
	if err != nil && kind != done && ctx.Err() != nil {
		// The caller gave up while the answer came: say so, rather than
		// blame a cut-off body (and a write stays "outcome unknown").
		return c.transportFailure(ctx, actx, req, ct.sent.Load(), err)
	}
	return env, kind, 0, err
}

// transportFailure classifies an attempt that got no HTTP answer.
func (c *Client) transportFailure(ctx, actx context.Context, req request, sent bool, err error) (*envelope, outcome, time.Duration, error) {
	if rl, ok := errors.AsType[*rateLimitedError](err); ok {
		e := duoError(req, http.StatusTooManyRequests, rl.body)
		return nil, throttled, rl.retryAfter, e
	}
	if tl, ok := errors.AsType[*answerTooLargeError](err); ok {
		// Duo did answer: the request was received. A read is not worth
		// repeating; a write may have been done and is settled the usual
		// way (outcome unknown, verified by a read).
		err = fmt.Errorf("duo %s %s: %w", req.method, req.path, tl)
		if req.write() {
			return nil, unknown, 0, &outcomeUnknownError{method: req.method, path: req.path, cause: tl}
		}
		return nil, done, 0, err
	}
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case actx.Err() != nil:
		err = fmt.Errorf("no answer within %v: %w", c.timeout, actx.Err())
	}
	if isTLSVerification(err) {
		return nil, done, 0, fmt.Errorf("duo %s %s: TLS verification failed (is ca_file needed?): %w", req.method, req.path, err)
	}
	if sent && req.write() {
		return nil, unknown, 0, &outcomeUnknownError{method: req.method, path: req.path, cause: err}
	}
	return nil, retry, 0, fmt.Errorf("duo %s %s: %w", req.method, req.path, err)
}

func isTLSVerification(err error) bool {
	_, a := errors.AsType[*tls.CertificateVerificationError](err)
	_, b := errors.AsType[x509.UnknownAuthorityError](err)
	_, c := errors.AsType[x509.HostnameError](err)
	_, d := errors.AsType[x509.CertificateInvalidError](err)
	return a || b || c || d
}

// decode checks the HTTP status and stat of an answer: duo_api_golang
// returns 4xx and 5xx with a nil error.
func decode(req request, status int, body []byte) (*envelope, outcome, error) {
	// One pass over the body: the envelope, with "response" decoded in
	// place into a fresh value of the caller's type (a 100,000-user read
	// is mostly JSON decoding).
	var env envelope
	var fresh reflect.Value
	if req.out != nil {
		fresh = reflect.New(reflect.TypeOf(req.out).Elem())
		env.Response = fresh.Interface()
	} else {
		env.Response = new(json.RawMessage)
	}
	jsonErr := json.Unmarshal(body, &env)
	switch {
	case status >= 200 && status < 300 && jsonErr == nil && env.Stat == "OK":
		if req.out != nil {
			reflect.ValueOf(req.out).Elem().Set(fresh.Elem())
		}
		return &env, done, nil
	case status >= 200 && status < 300 && jsonErr != nil:
		// Duo answered but we cannot read it: for a write it may be done.
		err := fmt.Errorf("duo %s %s: HTTP %d with an unreadable body: %v", req.method, req.path, status, jsonErr)
		if req.write() {
			return nil, unknown, &outcomeUnknownError{method: req.method, path: req.path, cause: err}
		}
		return nil, retry, err
	case status >= 500:
		e := duoError(req, status, body)
		if jsonErr != nil && req.write() && status != http.StatusServiceUnavailable {
			// Not Duo's envelope: a gateway answered (502, 504), and Duo
			// may or may not have done the write behind it.
			return nil, unknown, &outcomeUnknownError{method: req.method, path: req.path, cause: e}
		}
		// Duo's own error envelope, or a 503 (a load balancer with no
		// server to pass it to): the request was not carried out.
		return nil, retry, e
	default:
		return nil, done, duoError(req, status, body)
	}
}

// duoError builds the typed error from Duo's error envelope, if any.
func duoError(req request, status int, body []byte) *Error {
	e := &Error{HTTPStatus: status, Method: req.method, Path: req.path}
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		e.Message = http.StatusText(status)
		if status >= 200 && status < 300 {
			e.Message = "unreadable answer"
		}
		return e
	}
	e.Code, _ = strconv.Atoi(strings.Trim(string(env.Code), `"`))
	e.Message, e.Detail = env.Message, env.MessageDetail
	if e.Message == "" && env.Stat != "FAIL" {
		e.Message = "stat " + strconv.Quote(env.Stat)
	}
	return e
}

// callTransport binds one attempt to its context, notes whether the request
// was written (to tell "never sent" from "outcome unknown"), and keeps 429s
// away from duo_api_golang's broken retry loop.
type callTransport struct {
	ctx  context.Context
	base http.RoundTripper
	sent atomic.Bool
}

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	trace := &httptrace.ClientTrace{
		// Set when the headers are buffered, before any byte reaches the
		// network: a request Duo may have received is never taken for
		// unsent (WroteRequest can fire after RoundTrip has returned).
		WroteHeaders: func() { t.sent.Store(true) },
	}
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(t.ctx, trace)))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, &rateLimitedError{retryAfter: parseRetryAfter(resp.Header.Get("Retry-After")), body: body}
	}
	if resp.ContentLength > maxBody {
		// Announced too large: refuse it before reading a byte of it.
		resp.Body.Close()
		return nil, &answerTooLargeError{limit: maxBody}
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxBody+1), c: resp.Body, limit: maxBody}
	return resp, nil
}

// limitedBody fails a read once more than limit bytes came, so that
// duo_api_golang's io.ReadAll stops there instead of buffering it all.
type limitedBody struct {
	r     io.Reader
	c     io.Closer
	n     int64
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		return n, &answerTooLargeError{limit: b.limit}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return min(time.Duration(secs)*time.Second, 5*time.Minute)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), 5*time.Minute)
	}
	return 0
}

// wait holds a call until the shared 429 pause is over and the rate
// limiter grants it a slot.
func (c *Client) wait(ctx context.Context, write bool) error {
	lim := c.readLimit
	if write {
		lim = c.writeLimit
	}
	for {
		if err := sleep(ctx, time.Until(c.pause.end())); err != nil {
			return err
		}
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
		}
		// Another worker may have been throttled while we waited.
		if !time.Now().Before(c.pause.end()) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is base·2ⁿ, capped at ceiling.
func backoff(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
