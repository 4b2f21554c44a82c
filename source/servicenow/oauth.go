package servicenow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenSource holds the OAuth access token and renews it: with the
// refresh_token grant when it has a refresh token, else (or when the refresh
// token is refused) with the configured grant (password or client_credentials).
type tokenSource struct {
	c       *Client
	mu      sync.Mutex
	access  string
	refresh string
	expires time.Time

	// The tokens again, under their own lock, for redaction while mu is held.
	secMu  sync.Mutex
	secret [2]string
}

func (t *tokenSource) grant() string {
	if t.c.cfg.User != "" {
		return "password"
	}
	return "client_credentials"
}

// token returns a valid access token, fetching one when needed.
func (t *tokenSource) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.access != "" && time.Now().Before(t.expires) {
		return t.access, nil
	}
	t.access = ""
	if t.refresh != "" {
		err := t.request(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.refresh}})
		if err == nil {
			return t.access, nil
		}
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status >= 500 {
			return "", err
		}
		// The refresh token was refused (expired, revoked): start over.
		t.c.log.InfoContext(ctx, "servicenow refresh token refused, requesting a new grant", "grant", t.grant())
		t.refresh = ""
	}
	form := url.Values{"grant_type": {t.grant()}}
	if t.grant() == "password" {
		form.Set("username", t.c.cfg.User)
		form.Set("password", t.c.cfg.Password)
	}
	if err := t.request(ctx, form); err != nil {
		return "", err
	}
	return t.access, nil
}

// invalidate drops the access token if it is still the one that was refused.
func (t *tokenSource) invalidate(old string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.access == old {
		t.access = ""
	}
}

// current lists the tokens held, for redaction.
func (t *tokenSource) current() []string {
	t.secMu.Lock()
	defer t.secMu.Unlock()
	var out []string
	for _, s := range t.secret {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// request is POST /oauth_token.do (form-encoded; idempotent, so retried
// like a GET). The caller holds t.mu.
func (t *tokenSource) request(ctx context.Context, form url.Values) error {
	c := t.c
	grant := form.Get("grant_type")
	target := "oauth_token.do (" + grant + " grant)"
	form.Set("client_id", c.cfg.ClientID)
	form.Set("client_secret", c.cfg.ClientSecret)
	body := []byte(form.Encode())
	u := *c.base
	u.Path = "/oauth_token.do"

	var lastErr error
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := c.pause(ctx, call{method: http.MethodPost, target: target}, attempt-1, c.backoff(attempt-1), lastErr.Error()); err != nil {
				return err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("ServiceNow POST %s: %w", target, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		c.stats.requests.Add(1)
		c.stats.tokenRequests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = fmt.Errorf("ServiceNow POST %s: %s", target, c.redact(transportMessage(err)))
			continue
		}
		raw, readErr := readBounded(resp.Body)
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			lastErr = c.apiError(call{method: http.MethodPost, target: target}, resp.StatusCode, ct, raw)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err := c.apiError(call{method: http.MethodPost, target: target}, resp.StatusCode, ct, raw)
			if grant == "client_credentials" {
				return fmt.Errorf("%w (the client_credentials grant needs the system property glide.oauth.inbound.client.credential.grant_type.enabled=true and an OAuth Application User)", err)
			}
			return err
		}
		if readErr != nil {
			lastErr = fmt.Errorf("ServiceNow POST %s: read answer: %w", target, readErr)
			continue
		}
		return t.accept(target, ct, raw)
	}
	return fmt.Errorf("%w (after %d attempts)", lastErr, c.cfg.MaxAttempts)
}

// accept stores a token answer.
func (t *tokenSource) accept(target, ct string, raw []byte) error {
	if !isJSON(ct, raw) {
		return fmt.Errorf("ServiceNow POST %s: %s, not a token", target, describeBody(ct, raw))
	}
	var tr struct {
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		TokenType    string          `json:"token_type"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil || tr.AccessToken == "" {
		return fmt.Errorf("ServiceNow POST %s: the answer holds no access_token", target)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return fmt.Errorf("ServiceNow POST %s: token type %q, want Bearer", target, clip(tr.TokenType))
	}
	secs := 1800 // ServiceNow's default lifespan
	if s, err := scalar(tr.ExpiresIn); err == nil && s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			secs = n
		}
	}
	life := time.Duration(secs) * time.Second
	// Renew a little early: a tenth of the lifetime, at most a minute.
	t.expires = time.Now().Add(life - min(life/10, time.Minute))
	t.access = tr.AccessToken
	if tr.RefreshToken != "" {
		t.refresh = tr.RefreshToken
	}
	t.secMu.Lock()
	t.secret = [2]string{t.access, t.refresh}
	t.secMu.Unlock()
	return nil
}
