package servicenow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds any answer read into memory; a page larger than this
// means PageSize is too large for the requested fields.
const maxBody = 64 << 20

// call is one Table API request.
type call struct {
	method string
	path   string // below the instance, e.g. /api/now/table/sc_req_item
	target string // for messages: the table, or table/sys_id
	query  url.Values
	body   []byte
}

// answer is a successful (2xx) JSON response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a call with authentication and the retry policy: a GET is retried
// on 429 (after Retry-After), 5xx and transport errors; any call is retried
// once after a 401 with a renewed OAuth token, and after a 429 or a 503 (the
// instance refused it before doing anything). Other failures of a write
// are returned, marked ErrOutcomeUnknown when it may have been applied.
func (c *Client) do(ctx context.Context, cl call) (answer, error) {
	idempotent := cl.method == http.MethodGet || cl.method == http.MethodHead
	reauthed := false
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return answer{}, err
		}
		req, err := c.newRequest(ctx, cl)
		if err != nil {
			return answer{}, err
		}
		c.stats.requests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return answer{}, ctx.Err()
			}
			terr := fmt.Errorf("ServiceNow %s %s: %s", cl.method, cl.target, c.redact(transportMessage(err)))
			if !idempotent && !notSent(err) {
				return answer{}, fmt.Errorf("%w: %w", terr, ErrOutcomeUnknown)
			}
			if attempt >= c.cfg.MaxAttempts {
				return answer{}, fmt.Errorf("%w (after %d attempts)", terr, attempt)
			}
			if err := c.pause(ctx, cl, attempt, c.backoff(attempt), terr.Error()); err != nil {
				return answer{}, err
			}
			continue
		}
		body, readErr := readBounded(resp.Body)
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")

		switch {
		case resp.StatusCode == http.StatusUnauthorized && c.oauth != nil && !reauthed:
			// The token expired or was revoked: renew it once and try again.
			reauthed = true
			c.oauth.invalidate(bearerOf(req))
			c.log.InfoContext(ctx, "servicenow token rejected, renewing", "target", cl.target)
			attempt--
			continue
		case resp.StatusCode == http.StatusTooManyRequests:
			c.stats.rateLimited.Add(1)
			apiErr := c.apiError(cl, resp.StatusCode, ct, body)
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if !ok {
				wait = c.backoff(attempt)
			}
			if attempt >= c.cfg.MaxAttempts {
				return answer{}, fmt.Errorf("%w (after %d attempts)", apiErr, attempt)
			}
			if wait > c.cfg.MaxRetryAfter {
				return answer{}, fmt.Errorf("%w: Retry-After %s exceeds the %s this run waits", apiErr, wait, c.cfg.MaxRetryAfter)
			}
			if err := c.pause(ctx, cl, attempt, wait, apiErr.Error()); err != nil {
				return answer{}, err
			}
			continue
		case resp.StatusCode >= 500:
			apiErr := c.apiError(cl, resp.StatusCode, ct, body)
			// A 503 comes from a node or load balancer that did not take the
			// request (no semaphore, maintenance): even a write is safe to
			// repeat. Any other 5xx may have been applied.
			if !idempotent && resp.StatusCode != http.StatusServiceUnavailable {
				return answer{}, fmt.Errorf("%w: %w", apiErr, ErrOutcomeUnknown)
			}
			if attempt >= c.cfg.MaxAttempts {
				return answer{}, fmt.Errorf("%w (after %d attempts)", apiErr, attempt)
			}
			if err := c.pause(ctx, cl, attempt, c.backoff(attempt), apiErr.Error()); err != nil {
				return answer{}, err
			}
			continue
		case resp.StatusCode >= 300:
			return answer{}, c.apiError(cl, resp.StatusCode, ct, body)
		}
		if readErr != nil {
			err := fmt.Errorf("ServiceNow %s %s: read answer: %s", cl.method, cl.target, c.redact(readErr.Error()))
			if !idempotent {
				return answer{}, fmt.Errorf("%w: %w", err, ErrOutcomeUnknown)
			}
			if errors.Is(readErr, errTooLarge) || attempt >= c.cfg.MaxAttempts {
				return answer{}, err
			}
			if err := c.pause(ctx, cl, attempt, c.backoff(attempt), err.Error()); err != nil {
				return answer{}, err
			}
			continue
		}
		if resp.StatusCode != http.StatusNoContent && !isJSON(ct, body) {
			// A 200 login page (an SSO redirect, an expired session) is not data.
			return answer{}, fmt.Errorf("ServiceNow %s %s: status %d but %s, not JSON: is the instance URL right and the user allowed the REST API?",
				cl.method, cl.target, resp.StatusCode, describeBody(ct, body))
		}
		return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
	}
}

func (c *Client) newRequest(ctx context.Context, cl call) (*http.Request, error) {
	u := *c.base
	u.Path = cl.path
	u.RawQuery = cl.query.Encode()
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("ServiceNow %s %s: %w", cl.method, cl.target, err)
	}
	req.Header.Set("Accept", "application/json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "duosync")
	if c.oauth != nil {
		tok, err := c.oauth.token(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	} else {
		req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	}
	return req, nil
}

func bearerOf(req *http.Request) string {
	t, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	return t
}

func (c *Client) apiError(cl call, status int, ct string, body []byte) error {
	e := decodeAPIError(cl.method, cl.target, status, ct, body)
	e.Message, e.Detail = c.redact(e.Message), c.redact(e.Detail)
	return e
}

// pause waits before another attempt, logging why.
func (c *Client) pause(ctx context.Context, cl call, attempt int, wait time.Duration, why string) error {
	c.stats.retries.Add(1)
	c.log.WarnContext(ctx, "servicenow retry", "method", cl.method, "target", cl.target,
		"attempt", attempt, "wait", wait.String(), "reason", why)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is exponential with jitter: base·2^(attempt-1), capped at 30s,
// drawn from its upper half so retries from several runs spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RetryBaseDelay << min(attempt-1, 16)
	if d <= 0 || d > 30*time.Second {
		d = 30 * time.Second
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After: seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(h); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// notSent reports a transport error that happened before the request left:
// a failed dial. Only then may a write be retried.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transportMessage is err's text without the request URL that *url.Error adds.
func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

var errTooLarge = fmt.Errorf("answer larger than %d MiB; lower the page size", maxBody>>20)

func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return b, err
	}
	if len(b) > maxBody {
		return nil, errTooLarge
	}
	return b, nil
}

func isJSON(ct string, body []byte) bool {
	mt, _, _ := strings.Cut(strings.ToLower(ct), ";")
	mt = strings.TrimSpace(mt)
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "" {
		return false
	}
	trimmed := bytes.TrimSpace(body)
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
}

func describeBody(ct string, body []byte) string {
	switch {
	case looksLikeHTML(ct, body):
		return "an HTML page (" + htmlTitle(body) + "), probably a login or SSO page"
	case len(bytes.TrimSpace(body)) == 0:
		return "an empty body"
	case ct != "":
		return "a " + clip(ct) + " body"
	}
	return "a body that is not JSON"
}
