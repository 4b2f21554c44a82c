package duotest

// A small Admin API client written from reference/duo-admin-api.md §3,
// sharing no code with the emulator's verifier, so that the conformance
// tests do not check the verifier against itself.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// envelope is any Admin API answer.
type envelope struct {
	Stat     string          `json:"stat"`
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Detail   string          `json:"message_detail"`
	Response json.RawMessage `json:"response"`
	Metadata *struct {
		NextOffset   *int `json:"next_offset"`
		PrevOffset   *int `json:"prev_offset"`
		TotalObjects int  `json:"total_objects"`
	} `json:"metadata"`
}

// signer signs requests the way the reference says official clients do.
type signer struct {
	t          testing.TB
	ikey, skey string
	host       string // host:port to connect to
	client     *http.Client

	// Variations, each modelled on an official client.
	signHost   string              // host put in the canonical string (default: host)
	dateHeader string              // "Date" (default) or "X-Duo-Date"
	date       func() string       // default: now in RFC 1123 with a numeric zone
	useSHA1    bool                // legacy v2 HMAC-SHA1
	v5         bool                // v5: JSON body for POST, body and header hashes
	chunked    bool                // send a form body without Content-Length
	emptyQuery bool                // Python's DELETE "path?"
	duoHeader  bool                // v5: send X-Duo-Test and sign it in the header hash
	tamper     func(*http.Request) // change the request after signing
}

func newSigner(t testing.TB, s *Server) *signer {
	return &signer{t: t, ikey: s.IKey(), skey: s.SKey(), host: s.Host(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.CAPool()}}}}
}

// escape percent-encodes all but the unreserved characters, upper-case hex.
func escape(s string) string {
	var out strings.Builder
	for _, b := range []byte(s) {
		if strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", b) >= 0 {
			out.WriteByte(b)
		} else {
			fmt.Fprintf(&out, "%%%02X", b)
		}
	}
	return out.String()
}

// canonical sorts by encoded key, then encoded value, as duo_client_python does.
func canonical(params url.Values) string {
	byKey := map[string][]string{}
	var keys []string
	for k, vs := range params {
		ek := escape(k)
		keys = append(keys, ek)
		for _, v := range vs {
			byKey[ek] = append(byKey[ek], escape(v))
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vs := byKey[k]
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, k+"="+v)
		}
	}
	return strings.Join(pairs, "&")
}

func hexSHA512(s string) string {
	h := sha512.New()
	io.WriteString(h, s)
	return hex.EncodeToString(h.Sum(nil))
}

// call sends a signed request and decodes the answer. A transport error
// (dropped connection) is returned as err.
func (c *signer) call(method, path string, params url.Values) (int, envelope, error) {
	if params == nil {
		params = url.Values{}
	}
	date := time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	if c.date != nil {
		date = c.date()
	}
	host := c.host
	if c.signHost != "" {
		host = c.signHost
	}
	hasBody := method == "POST" || method == "PUT"

	var body []byte
	headerHash := hexSHA512("")
	if c.duoHeader {
		headerHash = hexSHA512("x-duo-test\x00yes")
	}
	lines := []string{date, method, strings.ToLower(host), path}
	switch {
	case c.v5 && hasBody:
		obj := map[string]string{}
		for k := range params {
			obj[k] = params.Get(k)
		}
		body, _ = json.Marshal(obj)
		lines = append(lines, "", hexSHA512(string(body)), headerHash)
	case c.v5:
		lines = append(lines, canonical(params), hexSHA512(""), headerHash)
	default:
		lines = append(lines, canonical(params))
		if hasBody {
			body = []byte(params.Encode()) // '+' for spaces, as on the wire
		}
	}
	var newHash func() hash.Hash = sha512.New
	if c.useSHA1 {
		newHash = sha1.New
	}
	mac := hmac.New(newHash, []byte(c.skey))
	io.WriteString(mac, strings.Join(lines, "\n"))
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ikey+":"+hex.EncodeToString(mac.Sum(nil))))

	u := "https://" + c.host + path
	if !hasBody && len(params) > 0 {
		u += "?" + params.Encode()
	} else if c.emptyQuery {
		u += "?"
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if c.chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.chunked && body != nil {
		req.ContentLength = -1
	}
	header := "Date"
	if c.dateHeader != "" {
		header = c.dateHeader
	}
	req.Header.Set(header, date)
	req.Header.Set("Authorization", auth)
	if c.duoHeader {
		req.Header.Set("X-Duo-Test", "yes")
	}
	if body != nil {
		if c.v5 {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if c.tamper != nil {
		c.tamper(req)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, envelope{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, envelope{}, err
	}
	var env envelope
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &env); err != nil {
			c.t.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, env, nil
}
