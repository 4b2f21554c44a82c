package sntest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/source/servicenow/sntest"
)

const fredID = "62826bf03710200044e0bfc8bcbe5df1"

var docSeed = &sntest.Seed{
	Users: []sntest.SeedUser{{SysID: fredID, UserName: "fred.johnson", FirstName: "Fred", LastName: "Johnson",
		Email: "fred.johnson@example.com"}},
	Requests: []sntest.SeedRequest{
		{SysID: "bbbb0000000000000000000000000001", Number: "RITM0010001", Approval: "approved", State: "3",
			CatItem: "Duo MFA Enrollment", RequestedFor: "fred.johnson", Variables: map[string]string{"duo_group": "MFA Users"},
			UpdatedOn: "2016-01-19 04:52:04"},
		{SysID: "bbbb0000000000000000000000000002", Number: "RITM0010002", Approval: "not requested", State: "1",
			CatItem: "Duo MFA Enrollment", UpdatedOn: "2016-01-20 00:00:00"},
	},
}

func start(t *testing.T, opts sntest.Options) *sntest.Server {
	t.Helper()
	if opts.Seed == nil && opts.Generate == 0 {
		opts.Seed = docSeed
	}
	s, err := sntest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, s *sntest.Server, method, path string, header map[string]string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.User(), s.Password())
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// sameJSON compares a reply to a literal, ignoring key order and spacing.
func sameJSON(t *testing.T, what string, got []byte, literal string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: reply is not JSON: %v: %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(literal), &w); err != nil {
		t.Fatalf("%s: bad literal: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, literal)
	}
}

// The shapes of servicenow.md §1's table, one per display-value mode and
// exclude_reference_link setting, as literal JSON.
func TestShapesMatchTheDocumentation(t *testing.T) {
	s := start(t, sntest.Options{})
	link := s.URL() + "/api/now/table/sys_user/" + fredID
	base := "/api/now/table/sc_req_item/bbbb0000000000000000000000000001?sysparm_fields=requested_for,state,sys_mod_count,work_notes"
	cases := map[string]string{
		"":                                     `{"result":{"requested_for":{"link":"` + link + `","value":"` + fredID + `"},"state":"3","sys_mod_count":"0","work_notes":""}}`,
		"&sysparm_display_value=false":         `{"result":{"requested_for":{"link":"` + link + `","value":"` + fredID + `"},"state":"3","sys_mod_count":"0","work_notes":""}}`,
		"&sysparm_display_value=true":          `{"result":{"requested_for":{"display_value":"Fred Johnson","link":"` + link + `"},"state":"Closed Complete","sys_mod_count":"0","work_notes":""}}`,
		"&sysparm_display_value=all":           `{"result":{"requested_for":{"display_value":"Fred Johnson","link":"` + link + `","value":"` + fredID + `"},"state":{"display_value":"Closed Complete","value":"3"},"sys_mod_count":{"display_value":"0","value":"0"},"work_notes":{"display_value":"","value":""}}}`,
		"&sysparm_exclude_reference_link=true": `{"result":{"requested_for":"` + fredID + `","state":"3","sys_mod_count":"0","work_notes":""}}`,
		"&sysparm_display_value=true&sysparm_exclude_reference_link=true": `{"result":{"requested_for":"Fred Johnson","state":"Closed Complete","sys_mod_count":"0","work_notes":""}}`,
		"&sysparm_display_value=all&sysparm_exclude_reference_link=true":  `{"result":{"requested_for":{"display_value":"Fred Johnson","value":"` + fredID + `"},"state":{"display_value":"Closed Complete","value":"3"},"sys_mod_count":{"display_value":"0","value":"0"},"work_notes":{"display_value":"","value":""}}}`,
	}
	for params, want := range cases {
		r := get(t, s, "GET", base+params, nil, "")
		if r.status != 200 || r.header.Get("Content-Type") != "application/json;charset=UTF-8" {
			t.Errorf("%q: status %d, type %q", params, r.status, r.header.Get("Content-Type"))
		}
		sameJSON(t, params, r.body, want)
	}
	// An empty reference is "", not an object; dot-walks are flat keys.
	r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_query=number=RITM0010002&sysparm_fields=requested_for,requested_for.name,cat_item.name,variables.duo_group", nil, "")
	sameJSON(t, "empty reference", r.body, `{"result":[{"requested_for":"","requested_for.name":"","cat_item.name":"Duo MFA Enrollment","variables.duo_group":""}]}`)
}

func TestErrorBodiesMatchTheDocumentation(t *testing.T) {
	s := start(t, sntest.Options{DenyWrite: []string{"bbbb0000000000000000000000000001"}})
	cases := []struct {
		method, path string
		header       map[string]string
		body         string
		status       int
		want         string
	}{
		{"GET", "/api/now/table/foo", nil, "", 400, `{"error":{"message":"Invalid table foo","detail":null},"status":"failure"}`},
		{"GET", "/api/now/table/sc_req_item", map[string]string{"Authorization": "Basic eDp5"}, "", 401,
			`{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`},
		{"PATCH", "/api/now/table/sc_req_item/bbbb0000000000000000000000000001", map[string]string{"Content-Type": "application/json"}, `{"work_notes":"x"}`, 403,
			`{"error":{"message":"Operation Failed","detail":"ACL Exception Update Failed due to security constraints"},"status":"failure"}`},
		{"GET", "/api/now/table/sc_req_item/ffff0000000000000000000000000000", nil, "", 404,
			`{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`},
	}
	for _, tc := range cases {
		r := get(t, s, tc.method, tc.path, tc.header, tc.body)
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, r.status, tc.status)
		}
		sameJSON(t, tc.method+" "+tc.path, r.body, tc.want)
	}
	// Required headers: Accept for GET, Content-Type for writes.
	if r := get(t, s, "GET", "/api/now/table/sc_req_item", map[string]string{"Accept": ""}, ""); r.status != 400 {
		t.Errorf("no Accept: %d", r.status)
	}
	if r := get(t, s, "GET", "/api/now/table/sc_req_item", map[string]string{"Accept": "text/html"}, ""); r.status != 406 {
		t.Errorf("Accept text/html: %d", r.status)
	}
	if r := get(t, s, "PATCH", "/api/now/table/sc_req_item/bbbb0000000000000000000000000002", nil, `{"state":"3"}`); r.status != 400 {
		t.Errorf("PATCH without Content-Type: %d", r.status)
	}
	if r := get(t, s, "PATCH", "/api/now/table/sc_req_item/bbbb0000000000000000000000000002", map[string]string{"Content-Type": "application/json"}, `[1,`); r.status != 400 {
		t.Errorf("PATCH with bad JSON: %d", r.status)
	}
}

func TestPagingHeaders(t *testing.T) {
	s := start(t, sntest.Options{Generate: 550})
	r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_limit=1&sysparm_fields=number", nil, "")
	if r.header.Get("X-Total-Count") != "550" {
		t.Errorf("X-Total-Count %q", r.header.Get("X-Total-Count"))
	}
	links := map[string]string{}
	for _, part := range strings.Split(r.header.Get("Link"), ",") {
		target, rel, _ := strings.Cut(part, ">;rel=")
		u, err := url.Parse(strings.TrimPrefix(target, "<"))
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/api/now/table/sc_req_item" || u.Query().Get("sysparm_fields") != "number" || u.Query().Get("sysparm_limit") != "1" {
			t.Errorf("link %s does not repeat the request", target)
		}
		links[strings.Trim(rel, `"`)] = u.Query().Get("sysparm_offset")
	}
	// gist bryanbarnard/ee1d952604a11e0f0342: total 550, limit 1 -> last 549; no prev on the first page.
	if want := map[string]string{"first": "0", "next": "1", "last": "549"}; !reflect.DeepEqual(links, want) {
		t.Errorf("links %v, want %v", links, want)
	}
	r = get(t, s, "GET", "/api/now/v1/table/sc_req_item?sysparm_limit=10000&sysparm_offset=20000", nil, "")
	if r.status != 404 {
		t.Errorf("v1 with no results: %d", r.status)
	}
	r = get(t, s, "GET", "/api/now/v2/table/sc_req_item?sysparm_offset=20000", nil, "")
	if r.status != 200 {
		t.Errorf("v2 with no results: %d", r.status)
	}
	sameJSON(t, "v2 empty", r.body, `{"result":[]}`)
	r = get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_limit=10000&sysparm_offset=20000&sysparm_fields=number", nil, "")
	if !strings.Contains(r.header.Get("Link"), "sysparm_offset=10000") {
		t.Errorf("prev link should point back one page: %s", r.header.Get("Link"))
	}
	r = get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_suppress_pagination_header=true&sysparm_limit=5", nil, "")
	if r.header.Get("Link") != "" {
		t.Errorf("Link not suppressed")
	}
	if r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_offset=-1", nil, ""); r.status != 400 {
		t.Errorf("negative offset: %d", r.status)
	}
}

func numbers(t *testing.T, s *sntest.Server, query string) []string {
	t.Helper()
	r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_fields=number&sysparm_query="+url.QueryEscape(query), nil, "")
	if r.status != 200 {
		t.Fatalf("query %q: %d %s", query, r.status, r.body)
	}
	var out struct{ Result []map[string]string }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	var nums []string
	for _, rec := range out.Result {
		nums = append(nums, rec["number"])
	}
	return nums
}

func TestEncodedQueries(t *testing.T) {
	seed := &sntest.Seed{
		Users: []sntest.SeedUser{{UserName: "a", Email: "a@x", Active: "true"}, {UserName: "b", Email: "b@x", Active: "false"}},
		Requests: []sntest.SeedRequest{
			{Number: "R1", Approval: "approved", State: "2", CatItem: "Duo MFA Enrollment", RequestedFor: "a", UpdatedOn: "2026-01-01 00:00:00"},
			{Number: "R2", Approval: "approved", State: "-5", CatItem: "Duo Group Access", RequestedFor: "b", UpdatedOn: "2026-01-02 00:00:00"},
			{Number: "R3", Approval: "not requested", State: "10", CatItem: "Other", RequestedFor: "a", UpdatedOn: "2026-01-03 00:00:00"},
		},
	}
	s := start(t, sntest.Options{Seed: seed})
	cases := map[string]string{
		"approval=approved":                                                   "R1,R2",
		"approval!=approved":                                                  "R3",
		"approval=not requested":                                              "R3",
		"cat_item.nameINDuo MFA Enrollment,Duo Group Access":                  "R1,R2",
		"cat_item.nameNOT INDuo MFA Enrollment":                               "R2,R3",
		"cat_item.nameLIKEgroup":                                              "R2",
		"cat_item.nameSTARTSWITHduo":                                          "R1,R2",
		"requested_for.active=true":                                           "R1,R3",
		"sys_updated_on>=2026-01-02 00:00:00":                                 "R2,R3",
		"sys_updated_on>2026-01-02 00:00:00":                                  "R3",
		"sys_updated_on<=javascript:gs.dateGenerate('2026-01-02','00:00:00')": "R1,R2",
		"sys_updated_on<2026-01-02 00:00:00":                                  "R1",
		"state<3":                                                             "R1,R2", // numeric, not "10" < "3"
		"approval=rejected^ORnumber=R3":                                       "R3",
		"approval=approved^requested_for.active=true":                         "R1",
		"number=R1^NQnumber=R3":                                               "R1,R3",
		"approval=approved^ORDERBYDESCnumber":                                 "R2,R1",
		"u_no_such_field=1^approval=approved":                                 "R1,R2", // unknown fields are ignored
		"ORDERBYDESCsys_updated_on":                                           "R3,R2,R1",
		"":                                                                    "R1,R2,R3",
	}
	for q, want := range cases {
		if got := strings.Join(numbers(t, s, q), ","); got != want {
			t.Errorf("query %q: got %s, want %s", q, got, want)
		}
	}
	if r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_query="+url.QueryEscape("approval~approved"), nil, ""); r.status != 400 {
		t.Errorf("unparseable query: %d", r.status)
	}
}

func TestPatchKeepsWorkNotes(t *testing.T) {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := start(t, sntest.Options{Now: func() time.Time { return clock }})
	path := "/api/now/table/sc_req_item/bbbb0000000000000000000000000002"
	r := get(t, s, "PATCH", path, map[string]string{"Content-Type": "application/json"}, `{"work_notes":"Duo user jdoe created","comments":"Your Duo account is ready","state":"3","sys_id":"evil","u_unknown":"x"}`)
	if r.status != 200 {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	var out struct{ Result map[string]any }
	_ = json.Unmarshal(r.body, &out)
	if out.Result["work_notes"] != "" || out.Result["comments"] != "" || out.Result["state"] != "3" ||
		out.Result["sys_id"] != "bbbb0000000000000000000000000002" || out.Result["sys_updated_on"] != "2026-03-01 12:00:00" {
		t.Errorf("PATCH answer: %v", out.Result)
	}
	st, _ := s.State().Request("RITM0010002")
	if len(st.WorkNotes) != 1 || st.WorkNotes[0].Value != "Duo user jdoe created" || st.WorkNotes[0].CreatedOn != "2026-03-01 12:00:00" ||
		len(st.Comments) != 1 || st.State != "3" {
		t.Errorf("state: %+v", st)
	}
	// The journal is readable as a table, too.
	j := get(t, s, "GET", "/api/now/table/sys_journal_field?sysparm_query=element=work_notes&sysparm_fields=value,element_id", nil, "")
	sameJSON(t, "journal", j.body, `{"result":[{"value":"Duo user jdoe created","element_id":"bbbb0000000000000000000000000002"}]}`)
	if r := get(t, s, "PATCH", path, map[string]string{"Content-Type": "application/json", "X-no-response-body": "true"}, `{"work_notes":"again"}`); r.status != 204 || len(r.body) != 0 {
		t.Errorf("X-no-response-body: %d %q", r.status, r.body)
	}
	if st, _ := s.State().Request("RITM0010002"); len(st.WorkNotes) != 2 {
		t.Errorf("second note missing: %+v", st.WorkNotes)
	}
	// The inspection endpoints need no credentials.
	for _, p := range []string{"/_emulator/state", "/_emulator/stats"} {
		resp, err := http.Get(s.URL() + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v", p, err)
		}
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		resp.Body.Close()
	}
	if st := s.Stats(); st.Patches != 2 || st.ByEndpoint["PATCH sc_req_item/{sys_id}"] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestOAuthAndTokenExpiry(t *testing.T) {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	s := start(t, sntest.Options{ClientID: "cid", TokenTTL: time.Minute, Now: now})
	tokenReq := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(s.URL()+"/oauth_token.do", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	status, tok := tokenReq(url.Values{"grant_type": {"password"}, "client_id": {"cid"}, "client_secret": {s.ClientSecret()},
		"username": {s.User()}, "password": {s.Password()}})
	if status != 200 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(60) || tok["refresh_token"] == nil {
		t.Fatalf("password grant: %d %v", status, tok)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok["access_token"].(string)}
	if r := get(t, s, "GET", "/api/now/table/sc_req_item", bearer, ""); r.status != 200 {
		t.Errorf("with token: %d", r.status)
	}
	clock = clock.Add(61 * time.Second)
	if r := get(t, s, "GET", "/api/now/table/sc_req_item", bearer, ""); r.status != 401 {
		t.Errorf("expired token: %d", r.status)
	}
	status, tok2 := tokenReq(url.Values{"grant_type": {"refresh_token"}, "client_id": {"cid"}, "client_secret": {s.ClientSecret()},
		"refresh_token": {tok["refresh_token"].(string)}})
	if status != 200 || tok2["access_token"] == tok["access_token"] {
		t.Fatalf("refresh: %d %v", status, tok2)
	}
	status, fail := tokenReq(url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"wrong"}})
	if status != 401 || fail["error"] != "server_error" || fail["error_description"] != "access_denied" {
		t.Errorf("bad secret: %d %v", status, fail)
	}
	// A refresh token is not an access token.
	if r := get(t, s, "GET", "/api/now/table/sc_req_item", map[string]string{"Authorization": "Bearer " + tok["refresh_token"].(string)}, ""); r.status != 401 {
		t.Errorf("refresh token used as access token: %d", r.status)
	}
	// JSON instead of a form gives "an unspecified error".
	resp, _ := http.Post(s.URL()+"/oauth_token.do", "application/json", strings.NewReader(`{}`))
	if resp.StatusCode != 400 {
		t.Errorf("JSON token request: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestRateLimitAnswers429(t *testing.T) {
	s := start(t, sntest.Options{RateLimit: sntest.RateLimit{Requests: 2, Period: time.Hour}})
	for i := 0; i < 2; i++ {
		if r := get(t, s, "GET", "/api/now/table/sc_req_item", nil, ""); r.status != 200 || r.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := get(t, s, "GET", "/api/now/table/sc_req_item", nil, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("third request: %d %v", r.status, r.header)
	}
	sameJSON(t, "429", r.body, `{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 2 requests per hour for Table API exceeded"},"status":"failure"}`)
	if s.Stats().RateLimited != 1 {
		t.Errorf("stats %+v", s.Stats())
	}
}

func TestParseRateLimit(t *testing.T) {
	good := map[string]sntest.RateLimit{
		"100/h": {100, time.Hour}, "100": {100, time.Hour}, "5/s": {5, time.Second}, "20/500ms": {20, 500 * time.Millisecond}, "": {},
	}
	for spec, want := range good {
		if got, err := sntest.ParseRateLimit(spec); err != nil || got != want {
			t.Errorf("%q: %v %v", spec, got, err)
		}
	}
	for _, bad := range []string{"x", "0/h", "-1/s", "5/fortnight", "5/-1s"} {
		if _, err := sntest.ParseRateLimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSeedFileAndGenerate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"requests":[{"number":"R1","requestd_for":"x"}]}`), 0o600)
	if _, err := sntest.LoadSeed(bad); err == nil || !strings.Contains(err.Error(), "requestd_for") {
		t.Errorf("typo in seed: %v", err)
	}
	orphan := &sntest.Seed{Requests: []sntest.SeedRequest{{Number: "R1", RequestedFor: "ghost"}}}
	if _, err := sntest.NewServer(sntest.Options{Seed: orphan}); err == nil || !strings.Contains(err.Error(), "requests[0]") {
		t.Errorf("unknown requester: %v", err)
	}
	a, b := sntest.Generate(200, 9), sntest.Generate(200, 9)
	if !reflect.DeepEqual(a, b) {
		t.Error("Generate is not deterministic")
	}
	approvals := map[string]int{}
	for i, r := range a.Requests {
		approvals[r.Approval]++
		u := a.Users[i]
		if !strings.HasSuffix(u.Email, "."+strings.TrimPrefix(r.Number, "RITM00")+"@example.com") && !strings.Contains(u.Email, ".") {
			t.Errorf("email %q", u.Email)
		}
	}
	if approvals["approved"] < 100 || approvals["requested"] == 0 || approvals["rejected"] == 0 {
		t.Errorf("approval mix %v", approvals)
	}
	if !strings.HasSuffix(a.Users[0].Email, ".1@example.com") {
		t.Errorf("first email %q, want first.last.1@example.com", a.Users[0].Email)
	}
	s := start(t, sntest.Options{Generate: 200, GenerateSeed: 9})
	st := s.State()
	if len(st.Requests) != 200 {
		t.Fatalf("%d requests", len(st.Requests))
	}
	groups := map[string]bool{}
	for _, r := range st.Requests {
		if g := r.Variables["duo_group"]; g != "" {
			groups[g] = true
		}
	}
	keys := []string{}
	for g := range groups {
		keys = append(keys, g)
	}
	sort.Strings(keys)
	if len(keys) < 3 {
		t.Errorf("groups %v", keys)
	}
}

func TestReadyLine(t *testing.T) {
	s := start(t, sntest.Options{})
	line := s.ReadyLine()
	if line[len(line)-1] != '\n' || strings.Count(string(line), "\n") != 1 {
		t.Errorf("ready line %q", line)
	}
	var v map[string]string
	if err := json.Unmarshal(line, &v); err != nil || v["url"] != s.URL() || v["user"] != s.User() || v["password"] != s.Password() ||
		!strings.HasPrefix(v["url"], "http://127.0.0.1:") || len(v) != 3 {
		t.Errorf("ready line %s: %v", line, err)
	}
}

func TestFaultsAndPageCap(t *testing.T) {
	s := start(t, sntest.Options{Generate: 30, PageCap: 7})
	r := get(t, s, "GET", "/api/now/table/sc_req_item?sysparm_limit=100&sysparm_fields=number", nil, "")
	var out struct{ Result []map[string]string }
	_ = json.Unmarshal(r.body, &out)
	if len(out.Result) != 7 || !strings.Contains(r.header.Get("Link"), `sysparm_offset=7>;rel="next"`) {
		t.Errorf("page cap: %d records, link %s", len(out.Result), r.header.Get("Link"))
	}
	f := start(t, sntest.Options{Generate: 3, FaultRate: 1, FaultSeed: 1})
	kinds := map[int]int{}
	for i := 0; i < 30; i++ {
		req, _ := http.NewRequest("GET", f.URL()+"/api/now/table/sc_req_item", nil)
		req.SetBasicAuth(f.User(), f.Password())
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			kinds[0]++ // dropped
			continue
		}
		resp.Body.Close()
		kinds[resp.StatusCode]++
	}
	if kinds[0] == 0 || kinds[500] == 0 || kinds[503] == 0 || kinds[200] != 0 {
		t.Errorf("fault mix %v", kinds)
	}
}
