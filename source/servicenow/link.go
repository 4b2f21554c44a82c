package servicenow

import (
	"net/url"
	"strconv"
	"strings"
)

// parseLink reads a Link header (`<url>;rel="next",<url>;rel="last"`) into
// rel -> URL. Malformed parts are skipped: the header is a hint, the
// X-Total-Count header decides when paging ends.
func parseLink(h string) map[string]string {
	out := map[string]string{}
	for len(h) > 0 {
		start := strings.IndexByte(h, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(h[start:], '>')
		if end < 0 {
			break
		}
		target := h[start+1 : start+end]
		rest := h[start+end+1:]
		// The parameters run to the next link: a comma followed by '<'.
		params := rest
		if next := strings.Index(rest, ",<"); next >= 0 {
			params, rest = rest[:next], rest[next+1:]
		} else if next := strings.Index(rest, ", <"); next >= 0 {
			params, rest = rest[:next], rest[next+2:]
		} else {
			rest = ""
		}
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if _, dup := out[rel]; !dup {
					out[rel] = target
				}
			}
		}
		h = rest
	}
	return out
}

// linkOffset returns the sysparm_offset of a Link target, or -1.
func linkOffset(target string) int {
	u, err := url.Parse(target)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(u.Query().Get("sysparm_offset"))
	if err != nil || n < 0 {
		return -1
	}
	return n
}
