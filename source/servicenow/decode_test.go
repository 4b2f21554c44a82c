package servicenow

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Literal shapes from servicenow.md §1 and the docs it cites.
const (
	docFalse = `{"result":[{"sys_id":"1","assigned_to":"","active":"true","impact":"1","sys_mod_count":"1",
		"requested_for":{"link":"https://i.service-now.com/api/now/table/sys_user/62826bf0","value":"62826bf0"},
		"user.name":"Fred Johnson"}]}`
	docTrue = `{"result":[{"sys_id":"1","assigned_to":"","state":"Closed Complete",
		"requested_for":{"display_value":"Fred Johnson","link":"https://i.service-now.com/api/now/table/sys_user/62826bf0"}}]}`
	docAll = `{"result":[{"sys_id":{"display_value":"1","value":"1"},"assigned_to":"","state":{"display_value":"Closed Complete","value":"3"},
		"requested_for":{"display_value":"Fred Johnson","link":"https://i.service-now.com/api/now/table/sys_user/62826bf0","value":"62826bf0"}}]}`
	docAllExcl = `{"result":[{"sys_id":{"display_value":"1","value":"1"},"state":{"display_value":"Closed Complete","value":"3"},
		"requested_for":{"display_value":"Fred Johnson","value":"62826bf0"}}]}`
)

func TestDecodeDocumentedShapes(t *testing.T) {
	cases := []struct {
		name, body, mode string
		want             map[string]string
	}{
		{"false", docFalse, "false", map[string]string{"sys_id": "1", "assigned_to": "", "active": "true", "impact": "1",
			"sys_mod_count": "1", "requested_for": "62826bf0", "user.name": "Fred Johnson"}},
		{"true", docTrue, "true", map[string]string{"sys_id": "1", "assigned_to": "", "state": "Closed Complete", "requested_for": "Fred Johnson"}},
		{"all", docAll, "all", map[string]string{"sys_id": "1", "assigned_to": "", "state": "3", "requested_for": "Fred Johnson",
			"requested_for.sys_id": "62826bf0"}},
		{"all excl", docAllExcl, "all", map[string]string{"sys_id": "1", "state": "3", "requested_for": "62826bf0"}},
		{"tolerated non-strings", `{"result":[{"a":1,"b":true,"c":null,"d":{"value":2.5},"e":{"display_value":null,"value":"x"}}]}`, "true",
			map[string]string{"a": "1", "b": "true", "c": "", "d": "2.5", "e": ""}},
	}
	for _, tc := range cases {
		recs, err := decodePage([]byte(tc.body), tc.mode)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(recs) != 1 || !reflect.DeepEqual(recs[0], tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, recs, tc.want)
		}
	}
}

func TestDecodePageRefusesOtherShapes(t *testing.T) {
	for _, body := range []string{``, `null`, `{}`, `{"result":null}`, `{"result":{}}`, `{"result":"x"}`, `[]`,
		`{"result":[null]}`, `{"result":[{"a":[1]}]}`, `{"result":[{"a":{"b":"c"}}]}`, `{"result":[{"a":{"value":{"x":1}}}]}`,
		`{"result":[{"a":"b"}`, `<html></html>`} {
		if _, err := decodePage([]byte(body), "all"); err == nil {
			t.Errorf("accepted %q", body)
		}
	}
	if recs, err := decodePage([]byte(`{"result":[]}`), "false"); err != nil || len(recs) != 0 {
		t.Errorf("empty result: %v %v", recs, err)
	}
}

func TestDecodeAPIError(t *testing.T) {
	cases := []struct {
		status int
		ct     string
		body   string
		want   string
	}{
		{400, "application/json", `{"error":{"message":"Invalid table foo","detail":null},"status":"failure"}`,
			"ServiceNow GET t: 400 Invalid table foo"},
		{401, "application/json", `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`,
			"ServiceNow GET t: 401 User Not Authenticated: Required to provide Auth information"},
		{500, "application/json", `{"error":{"message":"Transaction cancelled: maximum execution time exceeded","detail":"Transaction cancelled: maximum execution time exceeded Check logs"},"status":"failure"}`,
			"ServiceNow GET t: 500 Transaction cancelled: maximum execution time exceeded: Transaction cancelled: maximum execution time exceeded Check logs"},
		{401, "application/json", `{"error_description":"access_denied","error":"server_error"}`, "ServiceNow GET t: 401 server_error: access_denied"},
		{502, "text/html", `<html><head><title>502 Bad Gateway</title></head></html>`,
			`ServiceNow GET t: 502 an HTML page instead of a JSON error (title "502 Bad Gateway")`},
		{503, "", ``, "ServiceNow GET t: 503 Service Unavailable"},
		{418, "application/octet-stream", "\x00\x01\x02", "ServiceNow GET t: 418 HTTP error (unrecognised error body)"},
	}
	for _, tc := range cases {
		if got := decodeAPIError("GET", "t", tc.status, tc.ct, []byte(tc.body)).Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
	long := decodeAPIError("GET", "t", 400, "application/json", []byte(`{"error":{"message":"`+strings.Repeat("é", 1000)+`"}}`))
	if len(long.Message) > maxErrorText+4 || !strings.HasSuffix(long.Message, "…") {
		t.Errorf("long message not clipped: %d bytes", len(long.Message))
	}
}

func TestParseLink(t *testing.T) {
	h := `<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=number&sysparm_offset=0>;rel="first",` +
		`<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=number&sysparm_offset=-1>;rel="prev",` +
		`<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=number&sysparm_offset=1>;rel="next",` +
		`<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=number&sysparm_offset=549>;rel="last"`
	links := parseLink(h)
	got := map[string]int{}
	for rel, u := range links {
		got[rel] = linkOffset(u)
	}
	// An older capture's prev offset of -1 is no offset at all.
	if want := map[string]int{"first": 0, "prev": -1, "next": 1, "last": 549}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	spaced := parseLink(`<https://x/a?sysparm_offset=5>; rel="next", <https://x/a?sysparm_offset=9>; rel=last`)
	if linkOffset(spaced["next"]) != 5 || linkOffset(spaced["last"]) != 9 {
		t.Errorf("spaced form: %v", spaced)
	}
	for _, bad := range []string{"", "<", ">", `<a>rel="next"`, `;rel="next"`, `<%zz>;rel="next"`} {
		l := parseLink(bad)
		if linkOffset(l["next"]) != -1 {
			t.Errorf("%q gave %v", bad, l)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{"0": 0, "5": 5 * time.Second, " 120 ": 2 * time.Minute,
		now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0}
	for h, want := range cases {
		if got, ok := retryAfter(h, now); !ok || got != want {
			t.Errorf("%q: %v %v, want %v", h, got, ok, want)
		}
	}
	for _, bad := range []string{"", "-1", "soon", "1.5"} {
		if _, ok := retryAfter(bad, now); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	c := &Client{cfg: Config{RetryBaseDelay: 100 * time.Millisecond}}
	for attempt, lo := range map[int]time.Duration{1: 50 * time.Millisecond, 3: 200 * time.Millisecond, 40: 15 * time.Second} {
		for i := 0; i < 20; i++ {
			d := c.backoff(attempt)
			if d < lo || d > 2*lo {
				t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, lo, 2*lo)
			}
		}
	}
}

func FuzzParseLink(f *testing.F) {
	f.Add(`<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1>;rel="next"`)
	f.Add(`<a?sysparm_offset=0>;rel="first",<a?sysparm_offset=-1>;rel="prev",<a?sysparm_offset=20000>;rel="last"`)
	f.Add(`<x>; rel="next last", <y>; title="z"; rel=prev`)
	f.Add(`<<>>;;,,rel=`)
	f.Fuzz(func(t *testing.T, h string) {
		for rel, u := range parseLink(h) {
			if rel == "" {
				t.Errorf("empty rel from %q", h)
			}
			_ = linkOffset(u)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{docFalse, docTrue, docAll, docAllExcl, `{"result":[]}`, `{"result":[{"a":{"value":1}}]}`,
		`{"result":[{"a":{"display_value":"x"}}]}`, `{"result":null}`, `{"error":{"message":"m","detail":null},"status":"failure"}`} {
		f.Add([]byte(s), "all")
		f.Add([]byte(s), "true")
		f.Add([]byte(s), "false")
	}
	f.Fuzz(func(t *testing.T, body []byte, mode string) {
		recs, err := decodePage(body, mode)
		if err != nil && recs != nil {
			t.Errorf("records with an error")
		}
		_ = decodeAPIError("GET", "t", 400, "application/json", body).Error()
	})
}
