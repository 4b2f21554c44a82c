package duo_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
)

// fakeDuo is a minimal HTTPS Admin API written for these tests: it checks
// every request's v2 HMAC-SHA512 signature (a verifier written from the
// reference document, sharing no code with the client or duo_api_golang),
// records what it received, and answers through a handler per test that
// reproduces one trap of the real API.
type fakeDuo struct {
	t          *testing.T
	srv        *httptest.Server
	ikey, skey string
	caFile     string

	mu   sync.Mutex
	seen []seenReq

	handle func(w http.ResponseWriter, r *http.Request, req seenReq)
}

type seenReq struct {
	Method, Path string
	Params       url.Values
	Date         string
	SigOK        bool
	At           time.Time
}

const testSKey = "SKEYsecretsecretsecretsecretsecret1234567"

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, req seenReq)) *fakeDuo {
	t.Helper()
	f := &fakeDuo{t: t, ikey: "DIFAKEIKEY0000000001", skey: testSKey, handle: handle}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeDuo) host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeDuo) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		params, _ = url.ParseQuery(string(body))
	}
	req := seenReq{Method: r.Method, Path: r.URL.Path, Params: params, Date: r.Header.Get("Date"), At: time.Now()}
	req.SigOK = f.signatureOK(r, params)
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()
	if !req.SigOK {
		failure(w, 401, 40103, "Invalid signature in request credentials", "")
		return
	}
	f.handle(w, r, req)
}

// signatureOK checks Authorization against the v2 canonical form:
// date \n METHOD \n host \n path \n sorted, %20-encoded params.
func (f *fakeDuo) signatureOK(r *http.Request, params url.Values) bool {
	user, sig, ok := r.BasicAuth()
	if !ok || user != f.ikey || r.Header.Get("Date") == "" {
		return false
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, pct(k)+"="+pct(v))
		}
	}
	canon := strings.Join([]string{r.Header.Get("Date"), r.Method, strings.ToLower(r.Host), r.URL.Path, strings.Join(parts, "&")}, "\n")
	mac := hmac.New(sha512.New, []byte(f.skey))
	mac.Write([]byte(canon))
	return hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil))))
}

func pct(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (f *fakeDuo) requests() []seenReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenReq(nil), f.seen...)
}

func (f *fakeDuo) count(method, path string) int {
	n := 0
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

func success(w http.ResponseWriter, response any, meta map[string]any) {
	env := map[string]any{"stat": "OK", "response": response}
	if meta != nil {
		env["metadata"] = meta
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(env)
}

func failure(w http.ResponseWriter, status, code int, msg, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	env := map[string]any{"stat": "FAIL", "code": code, "message": msg}
	if detail != "" {
		env["message_detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(env)
}

// drop closes the connection without an answer, as a lost connection does.
func drop(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// logBuffer collects a client's log output, for the secret audit.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newClient builds a client for f with fast retries; mods adjust the config.
func newClient(t *testing.T, f *fakeDuo, mods ...func(*duo.Config)) (*duo.Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := duo.Config{
		Host: f.host(), IKey: f.ikey, SKey: f.skey, CAFile: f.caFile,
		Timeout: 2 * time.Second, RetryBase: 2 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := duo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

// fakeUser is the JSON of a Duo user as the Admin API renders it.
func fakeUser(i int) map[string]any {
	return map[string]any{
		"user_id":  fmt.Sprintf("DU%018d", i),
		"username": fmt.Sprintf("user%05d@example.com", i),
		"alias1":   fmt.Sprintf("user%05d", i),
		"alias2":   nil,
		"email":    fmt.Sprintf("user%05d@example.com", i),
		"realname": "User " + fmt.Sprint(i), "status": "active", "is_enrolled": i%2 == 0,
		"groups": []any{map[string]any{"group_id": "DG00000000000000000A", "name": "MFA Users", "status": "Active"}},
	}
}

// usersList answers GET /admin/v1/users for n users, giving at most
// pageCap(offset) rows per page whatever the limit, like Duo may.
func usersList(n int, pageCap func(offset int) int) func(w http.ResponseWriter, r *http.Request, req seenReq) {
	return func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if req.Method != http.MethodGet || req.Path != "/admin/v1/users" {
			failure(w, 404, 40401, "Resource not found", "")
			return
		}
		var offset, limit int
		fmt.Sscan(req.Params.Get("offset"), &offset)
		if _, err := fmt.Sscan(req.Params.Get("limit"), &limit); err != nil {
			limit = 100
		}
		limit = min(limit, 300, pageCap(offset))
		var rows []any
		for i := offset; i < min(offset+limit, n); i++ {
			rows = append(rows, fakeUser(i))
		}
		meta := map[string]any{"total_objects": n}
		if offset+len(rows) < n {
			meta["next_offset"] = offset + len(rows)
		}
		if offset > 0 {
			meta["prev_offset"] = max(0, offset-limit)
		}
		success(w, rows, meta)
	}
}
