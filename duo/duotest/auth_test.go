package duotest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSignatureVariants: every way an official client signs is accepted.
func TestSignatureVariants(t *testing.T) {
	s := newTestServer(t, Options{})
	hostOnly, _, _ := net.SplitHostPort(s.Host())
	variants := map[string]func(c *signer){
		"v2 SHA512":                 func(c *signer) {},
		"v2 SHA1":                   func(c *signer) { c.useSHA1 = true },
		"v5 SHA512 JSON body":       func(c *signer) { c.v5 = true },
		"X-Duo-Date":                func(c *signer) { c.dateHeader = "X-Duo-Date" },
		"v5 with an X-Duo-* header": func(c *signer) { c.v5, c.duoHeader = true, true },
		"host without port":         func(c *signer) { c.signHost = hostOnly },
		"upper-case host":           func(c *signer) { c.signHost = strings.ToUpper("localhost") + s.Host()[len(hostOnly):] },
		"chunked form body":         func(c *signer) { c.chunked = true },
		"Python DELETE path?":       func(c *signer) { c.emptyQuery = true },
		"date -0000 (Python formatdate)": func(c *signer) {
			c.date = func() string { return time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0000") }
		},
		"date in GMT": func(c *signer) { c.date = func() string { return time.Now().UTC().Format(http.TimeFormat) } },
		"date +0100 (Ruby rfc2822)": func(c *signer) {
			c.date = func() string { return time.Now().In(time.FixedZone("", 3600)).Format(time.RFC1123Z) }
		},
	}
	i := 0
	for name, set := range variants {
		t.Run(name, func(t *testing.T) {
			c := newSigner(t, s)
			set(c)
			if name == "upper-case host" {
				// The client connects to localhost and signs it in capitals.
				c.host = "localhost" + s.Host()[len(hostOnly):]
			}
			i++
			user := "user" + string(rune('a'+i)) + " with space+plus~tilde*star/slash"
			env := expect(t, c, "POST", "/admin/v1/users", form("username", user, "realname", "A B"), 200, 0)
			id := decodeAs[userJSON](t, env).UserID
			expect(t, c, "GET", "/admin/v1/users", form("username", user, "limit", "10"), 200, 0)
			expect(t, c, "DELETE", "/admin/v1/users/"+id, nil, 200, 0)
		})
	}
}

// TestBadRequests: each kind of bad request gets Duo's status and code and
// changes nothing.
func TestBadRequests(t *testing.T) {
	s := newTestServer(t, Options{ClockSkew: time.Minute})
	cases := []struct {
		name   string
		set    func(c *signer)
		v5     bool
		status int
		code   int
	}{
		{"wrong skey", func(c *signer) { c.skey = strings.Repeat("y", 40) }, false, 401, 40103},
		{"unknown ikey", func(c *signer) { c.ikey = "DIAAAAAAAAAAAAAAAAAA" }, false, 401, 40102},
		{"stale date", func(c *signer) {
			c.date = func() string { return time.Now().Add(-2 * time.Minute).UTC().Format(time.RFC1123Z) }
		}, false, 401, 40104},
		{"future date", func(c *signer) {
			c.date = func() string { return time.Now().Add(2 * time.Minute).UTC().Format(time.RFC1123Z) }
		}, false, 401, 40104},
		{"missing date", func(c *signer) { c.tamper = func(r *http.Request) { r.Header.Del("Date") } }, false, 401, 40104},
		{"localized date", func(c *signer) { c.date = func() string { return "Mi, 03 Dez 2026 10:00:00 +0000" } }, false, 401, 40104},
		{"garbage date", func(c *signer) { c.date = func() string { return "yesterday" } }, false, 401, 40104},
		{"no Authorization", func(c *signer) { c.tamper = func(r *http.Request) { r.Header.Del("Authorization") } }, false, 401, 40103},
		{"Authorization not base64", func(c *signer) {
			c.tamper = func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }
		}, false, 401, 40103},
		{"tampered parameter", func(c *signer) {
			c.tamper = func(r *http.Request) { tamperBody(r, "username=mallory") }
		}, false, 401, 40103},
		{"tampered body (v5)", func(c *signer) {
			c.tamper = func(r *http.Request) { tamperBody(r, `{"username":"mallory"}`) }
		}, true, 401, 40103},
		{"signed for another path", func(c *signer) {
			c.tamper = func(r *http.Request) { r.URL.Path = "/admin/v1/groups" }
		}, false, 401, 40103},
		{"signed for another method", func(c *signer) {
			c.tamper = func(r *http.Request) { r.Method = "PUT" }
		}, false, 401, 40103},
		{"signed for another host", func(c *signer) { c.signHost = "api-12345678.duosecurity.com" }, false, 401, 40103},
		{"date header changed after signing", func(c *signer) {
			c.tamper = func(r *http.Request) { r.Header.Set("Date", time.Now().Add(-time.Second).UTC().Format(time.RFC1123Z)) }
		}, false, 401, 40103},
		{"X-Duo-Date preferred to Date", func(c *signer) {
			c.dateHeader = "X-Duo-Date"
			c.tamper = func(r *http.Request) { r.Header.Set("Date", "Mon, 01 Jan 2001 00:00:00 +0000") }
		}, false, 200, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newSigner(t, s)
			c.v5 = tc.v5
			tc.set(c)
			expect(t, c, "POST", "/admin/v1/users", form("username", "ada-"+strings.ReplaceAll(tc.name, " ", "-")), tc.status, tc.code)
		})
	}
	if n := len(s.State().Users); n != 1 {
		t.Errorf("%d users, want only the one good request's", n)
	}
	if got := s.Stats().AuthFailures; got != int64(len(cases)-1) {
		t.Errorf("auth failures %d, want %d", got, len(cases)-1)
	}
}

func tamperBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}

// TestGoDeleteWithParams: duo_api_golang's DELETE signs params it never sends,
// which Duo refuses (reference §3).
func TestGoDeleteWithParams(t *testing.T) {
	s := newTestServer(t, Options{})
	lib := libClient{newLibAPI(s, s.SKey())}
	expect(t, lib, "DELETE", "/admin/v1/users/DUXXXXXXXXXXXXXXXXXX", form("x", "1"), 401, 40103)
	expect(t, lib, "DELETE", "/admin/v1/users/DUXXXXXXXXXXXXXXXXXX", nil, 200, 0)
}

func TestCanonParams(t *testing.T) {
	got := canonParams(url.Values{"b": {"2", "1"}, "a": {"x y~*/+é"}, "A": {""}})
	want := "A=&a=x%20y~%2A%2F%2B%C3%A9&b=1&b=2"
	if got != want {
		t.Errorf("canonParams = %q, want %q", got, want)
	}
}

// TestUnknownEndpoint: a signed request to an unknown route is 404 40401,
// counted under "(unknown)".
func TestUnknownEndpoint(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newSigner(t, s)
	expect(t, c, "GET", "/admin/v1/nothing", nil, 404, 40401)
	expect(t, c, "PATCH", "/admin/v1/users", nil, 404, 40401)
	if got := s.Stats().Endpoints["GET (unknown)"]; got != 1 {
		t.Errorf("unknown endpoint count %d", got)
	}
}

// TestBadBodies: bodies that cannot be decoded are clear 400s, never panics.
func TestBadBodies(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newSigner(t, s)
	for _, body := range []string{"%zz", "a=%", string(bytes.Repeat([]byte("a"), maxBody+10))} {
		c.tamper = func(r *http.Request) { tamperBody(r, body) }
		status, env, err := c.call("POST", "/admin/v1/users", form("username", "x"))
		if err != nil || status != 400 || env.Code != 40002 {
			t.Errorf("body %.10q: HTTP %d %+v %v", body, status, env, err)
		}
	}
	c.v5 = true
	c.tamper = func(r *http.Request) { tamperBody(r, "[1,2") }
	if status, env, _ := c.call("POST", "/admin/v1/users", form("username", "x")); status != 400 || env.Code != 40002 {
		t.Errorf("bad JSON: HTTP %d %+v", status, env)
	}
}
