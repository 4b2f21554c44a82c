package duo_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
)

// The secret key must not appear in any error, log line or printed config,
// whatever goes wrong: a bad signature, TLS, the network, timeouts,
// throttling, bad configuration.
func TestSecretKeyNeverLeaks(t *testing.T) {
	var seen []string // every error text, log and printed value
	ctx := context.Background()

	record := func(what string, err error) {
		if err == nil {
			t.Errorf("%s: expected an error", what)
			return
		}
		seen = append(seen, what+": "+err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}

	// A server that rejects the signature (the client signs with another key).
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { success(w, fakeUser(1), nil) })
	wrong, logs := newClient(t, f, func(c *duo.Config) { c.SKey = testSKey + "-wrong" })
	_, err := wrong.GetUser(ctx, "DU1")
	record("bad signature", err)
	_, err = wrong.CreateUser(ctx, jdoe)
	record("bad signature on POST", err)
	seen = append(seen, logs.String())

	// Throttled, then the server is gone: retries, unknown outcomes.
	var n atomic.Int32
	f2 := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) {
		if n.Add(1) < 3 {
			failure(w, 429, 42901, "Too Many Requests", "")
			return
		}
		drop(w)
	})
	c2, logs2 := newClient(t, f2, func(c *duo.Config) { c.MaxAttempts = 4 })
	record("dropped enroll", c2.EnrollUser(ctx, "a@example.com", "a@example.com", 0))
	_, _, err = c2.ListUsers(ctx)
	record("dropped read", err)
	seen = append(seen, logs2.String())

	// TLS: the server's CA is not given, so verification fails (and must).
	noCA, logs3 := newClient(t, f, func(c *duo.Config) { c.CAFile = "" })
	_, err = noCA.GetUser(ctx, "DU1")
	record("tls", err)
	if err != nil && !strings.Contains(err.Error(), "TLS") {
		t.Errorf("TLS failure not named as such: %v", err)
	}
	if s := noCA.Stats(); s.TotalCalls != 1 {
		t.Errorf("a TLS verification failure was retried: %d calls", s.TotalCalls)
	}
	seen = append(seen, logs3.String())

	// Nothing listening; and a server that never answers.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := l.Addr().String()
	l.Close()
	logs4 := &logBuffer{}
	refused, err := duo.New(duo.Config{Host: closedAddr, IKey: "DIX", SKey: testSKey, MaxAttempts: 2,
		RetryBase: time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs4, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = refused.GetUser(ctx, "DU1")
	record("refused", err)
	slow := newFake(t, func(w http.ResponseWriter, r *http.Request, req seenReq) { time.Sleep(time.Second) })
	c5, logs5 := newClient(t, slow, func(c *duo.Config) { c.Timeout = 100 * time.Millisecond; c.MaxAttempts = 2 })
	_, err = c5.CreateUser(ctx, jdoe)
	record("timeout", err)
	seen = append(seen, logs4.String(), logs5.String())

	// Configuration errors.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for name, cfg := range map[string]duo.Config{
		"missing host": {IKey: "DIX", SKey: testSKey},
		"bad host":     {Host: "https://" + testSKey, IKey: "DIX", SKey: testSKey},
		"no ca file":   {Host: "h", IKey: "DIX", SKey: testSKey, CAFile: "/nonexistent/ca.pem"},
		"bad ca file":  {Host: "h", IKey: "DIX", SKey: testSKey, CAFile: bad},
	} {
		_, err := duo.New(cfg)
		if name == "bad host" {
			continue // the host is the caller's own (public) value, echoed to help
		}
		record(name, err)
		if name == "bad ca file" && (err == nil || !strings.Contains(err.Error(), bad)) {
			t.Errorf("the CA error does not name the file: %v", err)
		}
	}

	cfg := duo.Config{Host: "h", IKey: "DIX", SKey: testSKey}
	logs6 := &logBuffer{}
	slog.New(slog.NewJSONHandler(logs6, nil)).Info("config", "duo", cfg)
	seen = append(seen, fmt.Sprint(cfg), fmt.Sprintf("%+v %#v %s", cfg, cfg, cfg), logs6.String())

	for _, s := range seen {
		if strings.Contains(s, testSKey) || strings.Contains(s, testSKey[:20]) {
			t.Errorf("the secret key leaked: %s", s)
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), "40103") {
		t.Error("the bad-signature error lost Duo's code")
	}
}
