package duotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// signedRequest is what the verifier needs of a request, decoded once.
type signedRequest struct {
	method string
	host   string // the Host header, as sent
	path   string
	params url.Values // query and form parameters, decoded ('+' is a space)
	body   []byte     // raw body, for the v5 body hash
	header http.Header
}

// dateLayouts are the date formats official clients send: RFC 1123 with a
// numeric zone (Go, Python's formatdate, Ruby), with a one-digit day, or
// with a zone name (GMT). time.Parse only knows English day and month names,
// so a localised date ("Mi, 03 Dez ...") fails, as it does at Duo.
var dateLayouts = []string{
	time.RFC1123Z,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 MST",
}

func parseDate(s string) (time.Time, bool) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// verify checks a request's credentials the way Duo does: integration key,
// then date, then signature. It never puts the secret key, the expected
// signature or a canonical string in the error it returns.
func (s *Server) verify(r *signedRequest, now time.Time) *apiError {
	authz := r.header.Get("Authorization")
	ikey, sigHex, ok := parseBasic(authz)
	if !ok {
		return errf(http.StatusUnauthorized, codeBadSignature, "Authorization header missing or not Basic ikey:signature")
	}
	if !hmac.Equal([]byte(ikey), []byte(s.ikey)) {
		return errf(http.StatusUnauthorized, codeBadIKey, "")
	}

	date := r.header.Get("X-Duo-Date")
	if date == "" {
		date = r.header.Get("Date")
	}
	if date == "" {
		return errf(http.StatusUnauthorized, codeBadDate, "no X-Duo-Date or Date header")
	}
	t, ok := parseDate(date)
	if !ok {
		return &apiError{status: http.StatusUnauthorized, code: codeBadDate, message: "Invalid request timestamp",
			detail: "the date must be RFC 1123 with English day and month names"}
	}
	if d := now.Sub(t); d > s.skew || d < -s.skew {
		return &apiError{status: http.StatusUnauthorized, code: codeBadDate, message: "Invalid request timestamp",
			detail: "the date is outside the allowed clock skew"}
	}

	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return errf(http.StatusUnauthorized, codeBadSignature, "")
	}
	var newHash func() hash.Hash
	switch len(sig) {
	case sha512.Size:
		newHash = sha512.New
	case sha1.Size:
		newHash = sha1.New // legacy v2 with HMAC-SHA1
	default:
		return errf(http.StatusUnauthorized, codeBadSignature, "")
	}
	for _, canon := range candidates(r, date, len(sig) == sha512.Size) {
		mac := hmac.New(newHash, []byte(s.skey))
		mac.Write([]byte(canon))
		if hmac.Equal(mac.Sum(nil), sig) {
			return nil
		}
	}
	return errf(http.StatusUnauthorized, codeBadSignature, "")
}

// parseBasic splits "Basic base64(ikey:hexsig)".
func parseBasic(h string) (ikey, sig string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	ikey, sig, ok = strings.Cut(string(raw), ":")
	return ikey, sig, ok && ikey != "" && sig != ""
}

// candidates returns every canonical string a genuine client could have
// signed for this request: the host with and without its port (Go signs the
// port, Python does not), v2, and, for SHA-512, v5 with the body hash and
// the X-Duo-* header hash (empty or over the headers sent).
func candidates(r *signedRequest, date string, v5 bool) []string {
	hosts := []string{strings.ToLower(r.host)}
	if h, _, err := net.SplitHostPort(r.host); err == nil {
		hosts = append(hosts, strings.ToLower(h))
	}
	params := canonParams(r.params)
	var out []string
	for _, host := range hosts {
		v2 := strings.Join([]string{date, strings.ToUpper(r.method), host, r.path, params}, "\n")
		out = append(out, v2)
		if !v5 {
			continue
		}
		for _, hh := range []string{sha512hex(nil), sha512hex([]byte(duoHeaders(r.header)))} {
			out = append(out, v2+"\n"+sha512hex(r.body)+"\n"+hh)
			if len(r.body) > 0 && !isJSON(r.header) {
				// A form body is already covered by the params line.
				out = append(out, v2+"\n"+sha512hex(nil)+"\n"+hh)
			}
		}
	}
	return out
}

// canonParams is Duo's parameter canonicalisation: keys sorted, values of
// one key sorted, everything but A-Za-z0-9-._~ percent-encoded in upper-case
// hex (so a space is %20, never '+').
func canonParams(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vals := append([]string(nil), v[k]...)
		sort.Strings(vals)
		for _, val := range vals {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(pctEncode(k))
			b.WriteByte('=')
			b.WriteString(pctEncode(val))
		}
	}
	return b.String()
}

func pctEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// duoHeaders joins the X-Duo-* headers as duo_client_python's
// canon_x_duo_headers does: lower-case names sorted, name and value
// separated by NUL.
func duoHeaders(h http.Header) string {
	var names []string
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-duo-") {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	var parts []string
	for _, k := range names {
		parts = append(parts, strings.ToLower(k), h.Get(k))
	}
	return strings.Join(parts, "\x00")
}

func sha512hex(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}
