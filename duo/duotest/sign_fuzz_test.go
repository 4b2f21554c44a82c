package duotest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
)

// The signature fuzzers check the verifier against the real client,
// duo_api_golang: whatever parameters it signs, the request it puts on the
// wire verifies; any single change to that request does not.
//
// `go test` runs the seeds (here and in testdata/fuzz/); `go test -fuzz
// FuzzSignature ./duo/duotest` explores.

const (
	fuzzIKey = "DIFUZZFUZZFUZZFUZZ01"
	fuzzSKey = "fuzzSKEYfuzzSKEYfuzzSKEYfuzzSKEYfuzz0123"
	fuzzHost = "api-fuzz.duosecurity.com:8443"
)

// captured is one request as the emulator would read it off the wire.
type captured struct {
	req  *http.Request
	body []byte
}

// captureTransport serialises each request the client sends, parses it back
// as a server does, and answers an empty success.
type captureTransport struct {
	got []captured
	err error
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		c.err = err
		return nil, err
	}
	sr, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		c.err = err
		return nil, err
	}
	body, err := io.ReadAll(sr.Body)
	if err != nil {
		c.err = err
		return nil, err
	}
	c.got = append(c.got, captured{req: sr, body: body})
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"stat":"OK","response":{}}`)), Request: r}, nil
}

var realClient = duoapi.NewDuoApi(fuzzIKey, fuzzSKey, fuzzHost, "fuzz")

var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT"}

// pathSegment keeps the fuzzed path to what an Admin API path can hold, so
// that URL escaping (not the verifier) is not what the fuzzer explores.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9._~-]*$`)

// signWithRealClient makes one call with duo_api_golang and returns the
// request as the emulator receives it. v5 uses JSONSignedCall.
func signWithRealClient(t *testing.T, method, path string, params url.Values, v5 bool) captured {
	t.Helper()
	ct := &captureTransport{}
	api := *realClient // a shallow copy with its own transport: building a client parses Duo's pinned CAs
	api.SetCustomHTTPClient(&http.Client{Transport: ct})
	var err error
	if v5 {
		jp := duoapi.JSONParams{}
		for k, vs := range params {
			jp[k] = vs[0]
		}
		_, _, err = api.JSONSignedCall(method, path, jp)
	} else {
		_, _, err = api.SignedCall(method, path, params)
	}
	if ct.err != nil {
		t.Skipf("the client cannot put this request on the wire: %v", ct.err)
	}
	if err != nil || len(ct.got) != 1 {
		t.Fatalf("%s %s: client error %v after %d requests", method, path, err, len(ct.got))
	}
	return ct.got[0]
}

func FuzzSignature(f *testing.F) {
	f.Add(uint8(0), "users", "username", "jane doe+x@example.com", "realname", "Jane ~Doe*", false, uint8(0))
	f.Add(uint8(1), "users", "username", "a&b=c;d", "alias1", `GLOBAL\jane`, false, uint8(1))
	f.Add(uint8(1), "users", "username", "ünïcödé ✓", "username", "second value", false, uint8(2))
	f.Add(uint8(0), "groups", "limit", "100", "offset", "0", false, uint8(3))
	f.Add(uint8(2), "DU0123456789ABCDEFGH", "", "", "", "", false, uint8(4))
	f.Add(uint8(1), "users", "username", "json body", "email", "j@example.com", true, uint8(9))
	f.Add(uint8(0), "users", "username_list", "[\"a\",\"b\"]", "", "", true, uint8(5))
	f.Add(uint8(3), "users", "", "empty key", "k", "\xff\xfe invalid utf-8", false, uint8(6))
	f.Add(uint8(1), "users", "a b", "%20+%2B", "A", "a", false, uint8(7))
	f.Add(uint8(0), "users", "x{", "1", "xa", "2", false, uint8(8))

	s, err := newServer(Options{IKey: fuzzIKey, SKey: fuzzSKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m uint8, seg, k1, v1, k2, v2 string, v5 bool, mutation uint8) {
		if !pathSegment.MatchString(seg) {
			return
		}
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		path := "/admin/v1/" + seg
		params := url.Values{}
		if method != "DELETE" { // duo_api_golang signs but never sends DELETE parameters
			params.Add(k1, v1)
			if k2 != k1 || !v5 { // JSON parameters are a map: one value per key
				params.Add(k2, v2)
			}
		}
		if v5 && (k1 == "" || k2 == "") {
			return // an empty JSON key is not a parameter Duo knows
		}
		got := signWithRealClient(t, method, path, params, v5)
		req, _, aerr := decode(got.req, got.body)
		if aerr != nil {
			t.Fatalf("%s %s: the emulator cannot decode what the real client sent: %s", method, path, aerr.message)
		}
		now := time.Now()
		if aerr := s.verify(req, now); aerr != nil {
			t.Fatalf("%s %s %v (v5 %v): a request the real client signed does not verify: code %d %s",
				method, path, params, v5, aerr.code, aerr.message)
		}

		// One change, and the request must be refused.
		what, ok := mutate(req, mutation, now)
		if !ok {
			return
		}
		if aerr := s.verify(req, now); aerr == nil {
			t.Fatalf("%s %s %v (v5 %v): still verifies after %s", method, path, params, v5, what)
		}
	})
}

// mutate changes one thing the signature covers and says what.
func mutate(r *signedRequest, mutation uint8, now time.Time) (string, bool) {
	firstKey := func() (string, bool) {
		keys := make([]string, 0, len(r.params))
		for k := range r.params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			return "", false
		}
		return keys[0], true
	}
	switch mutation % 10 {
	case 0:
		ikey, sig, _ := parseBasic(r.header.Get("Authorization"))
		b := []byte(sig)
		b[len(b)/2] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", b[len(b)/2])+1)%16]
		r.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(ikey+":"+string(b))))
		return "one signature digit changed", true
	case 1:
		k, ok := firstKey()
		if !ok {
			return "", false
		}
		r.params[k] = append([]string(nil), r.params[k]...)
		r.params[k][0] += "x"
		return "a parameter value changed", true
	case 2:
		r.params.Add("zz_added", "1")
		return "a parameter added", true
	case 3:
		r.path += "x"
		return "the path changed", true
	case 4:
		if r.method == "GET" {
			r.method = "POST"
		} else {
			r.method = "GET"
		}
		return "the method changed", true
	case 5:
		t, ok := parseDate(r.header.Get("Date"))
		if !ok {
			return "", false
		}
		r.header.Set("Date", t.Add(time.Second).Format(time.RFC1123Z))
		return "the date moved by a second", true
	case 6:
		r.host = "x" + r.host
		return "the host changed", true
	case 7:
		_, sig, _ := parseBasic(r.header.Get("Authorization"))
		r.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("DIFUZZFUZZFUZZFUZZ02:"+sig)))
		return "another integration key", true
	case 8:
		k, ok := firstKey()
		if !ok {
			return "", false
		}
		r.params.Del(k)
		return "a parameter removed", true
	default:
		if !isJSON(r.header) || len(r.body) == 0 {
			return "", false
		}
		r.body = append(append([]byte(nil), r.body...), ' ')
		return "the JSON body changed", true
	}
}

// FuzzCanonParams: the emulator's parameter canonicalisation is the real
// client's (duo_api_golang's canonParams: values sorted, url.Values.Encode,
// '+' as %20), and it is injective: two parameter sets that differ never
// canonicalise alike.
func FuzzCanonParams(f *testing.F) {
	f.Add("username", "jane doe", "alias1", "a+b", "z", "")
	f.Add("a", "&=", "a", "%", "~", "*")
	f.Add("x{", "1", "xa", "2", "", "")
	f.Add("k", "\x00\xff", "k", "é", "K", "k")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		v := url.Values{}
		v.Add(k1, v1)
		v.Add(k2, v2)
		v.Add(k3, v3)
		if got, want := canonParams(v), clientCanon(v); got != want {
			t.Fatalf("%v: emulator %q, duo_api_golang %q", v, got, want)
		}
		// Decoding the canonical form gives the same parameters back.
		back, err := url.ParseQuery(canonParams(v))
		if err != nil {
			t.Fatalf("%v: canonical form %q does not parse: %v", v, canonParams(v), err)
		}
		if canonParams(back) != canonParams(v) {
			t.Fatalf("%v: canonical form %q decodes to %v", v, canonParams(v), back)
		}
	})
}

// clientCanon is duo_api_golang's canonParams, restated (it is unexported).
func clientCanon(params url.Values) string {
	c := url.Values{}
	for k, vs := range params {
		vs = append([]string(nil), vs...)
		sort.Strings(vs)
		c[k] = vs
	}
	return strings.ReplaceAll(c.Encode(), "+", "%20")
}
