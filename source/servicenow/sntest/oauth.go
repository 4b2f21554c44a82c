package sntest

import (
	"encoding/json"
	"mime"
	"net/http"
	"time"
)

// serveToken is POST /oauth_token.do: form-encoded password, refresh_token
// and client_credentials grants. Failures answer as ServiceNow does:
// {"error_description":"access_denied","error":"server_error"} with 401.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, desc string) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error_description": desc, "error": "server_error"})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "an unspecified error occurred")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "an unspecified error occurred")
		return
	}
	f := r.PostForm
	if s.opts.ClientID == "" || f.Get("client_id") != s.opts.ClientID || f.Get("client_secret") != s.opts.ClientSecret {
		fail(http.StatusUnauthorized, "access_denied")
		return
	}
	withRefresh := false
	switch f.Get("grant_type") {
	case "password":
		if f.Get("username") != s.opts.User || f.Get("password") != s.opts.Password {
			fail(http.StatusUnauthorized, "access_denied")
			return
		}
		withRefresh = true
	case "refresh_token":
		s.mu.Lock()
		t, ok := s.tokens[f.Get("refresh_token")]
		s.mu.Unlock()
		if !ok || !t.refresh || !s.opts.Now().Before(t.expires) {
			fail(http.StatusUnauthorized, "access_denied")
			return
		}
	case "client_credentials":
		if s.opts.NoClientCredentials {
			fail(http.StatusUnauthorized, "access_denied")
			return
		}
	default:
		fail(http.StatusBadRequest, "unsupported grant_type")
		return
	}

	now := s.opts.Now()
	resp := map[string]any{"scope": "useraccount", "token_type": "Bearer",
		"expires_in": int(s.opts.TokenTTL / time.Second)}
	access := randomHex(24)
	s.mu.Lock()
	s.tokens[access] = token{expires: now.Add(s.opts.TokenTTL)}
	switch {
	case f.Get("grant_type") == "refresh_token":
		resp["refresh_token"] = f.Get("refresh_token")
	case withRefresh:
		refresh := randomHex(24)
		s.tokens[refresh] = token{refresh: true, expires: now.Add(8640000 * time.Second)}
		resp["refresh_token"] = refresh
	}
	s.mu.Unlock()
	resp["access_token"] = access
	s.stats.tokensIssued.Add(1)
	writeJSON(w, http.StatusOK, resp)
}
