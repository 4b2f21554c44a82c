package servicenow_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
	"github.com/duosync/duosync/source/servicenow/sntest"
)

const approvedQuery = "approval=approved^cat_item.nameINDuo MFA Enrollment,Duo Group Access"

func startEmulator(t *testing.T, opts sntest.Options) *sntest.Server {
	t.Helper()
	srv, err := sntest.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func newClient(t *testing.T, srv *sntest.Server, cfg servicenow.Config) *servicenow.Client {
	t.Helper()
	cfg.Instance = srv.URL()
	if cfg.User == "" && cfg.ClientID == "" {
		cfg.User, cfg.Password = srv.User(), srv.Password()
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Millisecond
	}
	c, err := servicenow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fetchAll(t *testing.T, c *servicenow.Client) ([]source.Request, servicenow.FetchInfo) {
	t.Helper()
	var got []source.Request
	info, err := c.Fetch(context.Background(), func(r source.Request) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return got, info
}

// approvedOf lists the seed's approved requests for the two Duo items, by number.
func approvedOf(seed *sntest.Seed) map[string]sntest.SeedRequest {
	out := map[string]sntest.SeedRequest{}
	for _, r := range seed.Requests {
		if r.Approval == "approved" {
			out[r.Number] = r
		}
	}
	return out
}

// The "must show": many pages (short ones, from a page cap), a 429
// rate limit with Retry-After, and an OAuth token revoked mid-run. Every
// approved request comes back exactly once, with its catalog variable.
func TestFetchEveryApprovedOnceUnderRateLimitAndTokenExpiry(t *testing.T) {
	const n = 150
	var tableCalls atomic.Int64
	var srv *sntest.Server
	srv = startEmulator(t, sntest.Options{
		ClientID: "duosync", Generate: n, GenerateSeed: 7,
		PageCap:   10,                                                  // pages shorter than the client's 25
		RateLimit: sntest.RateLimit{Requests: 12, Period: time.Second}, // ~30 GETs: at least one 429
		BeforeTableRequest: func(*http.Request) {
			if tableCalls.Add(1) == 5 {
				srv.RevokeTokens() // the access token dies between pages
			}
		},
	})
	c := newClient(t, srv, servicenow.Config{User: srv.User(), Password: srv.Password(),
		ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(), Query: approvedQuery, PageSize: 25})

	got, info := fetchAll(t, c)

	want := approvedOf(sntest.Generate(n, 7))
	seen := map[string]int{}
	for _, r := range got {
		seen[r.Number()]++
		w, ok := want[r.Number()]
		if !ok {
			t.Errorf("%s: not an approved request (approval %q)", r.Number(), r.Get("approval"))
			continue
		}
		if g := r.Get("variables.duo_group"); g != w.Variables["duo_group"] {
			t.Errorf("%s: duo_group %q, want %q", r.Number(), g, w.Variables["duo_group"])
		}
		if r.Get("requested_for.user_name") != w.RequestedFor {
			t.Errorf("%s: requested_for.user_name %q, want %q", r.Number(), r.Get("requested_for.user_name"), w.RequestedFor)
		}
		if r.Origin.File != srv.URL() || r.Origin.Line != 0 {
			t.Errorf("%s: origin %+v", r.Number(), r.Origin)
		}
	}
	for num := range want {
		if seen[num] != 1 {
			t.Errorf("%s seen %d times, want once", num, seen[num])
		}
	}
	if len(got) != len(want) || info.Records != len(want) || info.Total != len(want) {
		t.Errorf("got %d records (info %+v), want %d", len(got), info, len(want))
	}
	if wantPages := (len(want) + 9) / 10; info.Pages != wantPages {
		t.Errorf("pages %d, want %d (page cap 10 followed through Link next)", info.Pages, wantPages)
	}
	es, cs := srv.Stats(), c.Stats()
	if es.RateLimited == 0 || cs.RateLimited == 0 {
		t.Errorf("no 429 seen: emulator %+v client %+v", es, cs)
	}
	if es.Unauthorized == 0 || es.TokensIssued < 2 {
		t.Errorf("token revocation not exercised: %+v", es)
	}
}

func TestFetchIgnoresShortPagesFromACLs(t *testing.T) {
	seed := sntest.Generate(60, 3)
	probe := startEmulator(t, sntest.Options{Seed: seed})
	var hidden []string
	for _, r := range probe.State().Requests[:20] { // the whole first page is hidden: an empty page while more exist
		hidden = append(hidden, r.SysID)
	}
	srv := startEmulator(t, sntest.Options{Seed: seed, Hidden: hidden})
	c := newClient(t, srv, servicenow.Config{PageSize: 20, Query: "ORDERBYnumber"})
	got, info := fetchAll(t, c)
	if len(got) != 40 || info.Total != 60 || info.Pages != 3 {
		t.Fatalf("got %d records, info %+v; want 40 of 60 over 3 pages", len(got), info)
	}
	for _, r := range got {
		if r.Number() <= seed.Requests[19].Number {
			t.Errorf("hidden %s returned", r.Number())
		}
	}
}

var smallSeed = &sntest.Seed{
	Users: []sntest.SeedUser{
		{SysID: "62826bf03710200044e0bfc8bcbe5df1", UserName: "fred.johnson", FirstName: "Fred", LastName: "Johnson", Email: "fred.johnson@example.com"},
		{UserName: "zoe.muller", FirstName: "Zoë", LastName: "Müller", Email: "zoe.muller@example.com", Active: "false"},
	},
	CatalogItems: []sntest.SeedCatItem{{SysID: "0d08837237153000158bbfc8bcbe5d02", Name: "Duo MFA Enrollment"}},
	Requests: []sntest.SeedRequest{
		{SysID: "aaaa0000000000000000000000000001", Number: "RITM0010001", Approval: "approved", State: "2",
			CatItem: "Duo MFA Enrollment", RequestedFor: "fred.johnson", Variables: map[string]string{"duo_group": "Engineering, Platform"},
			UpdatedOn: "2026-02-01 10:00:00"},
		{SysID: "aaaa0000000000000000000000000002", Number: "RITM0010002", Approval: "requested", State: "1",
			CatItem: "Duo Group Access", RequestedFor: "zoe.muller", Variables: map[string]string{"duo_group": "VPN Users"},
			UpdatedOn: "2026-02-03 09:30:00"},
		{SysID: "aaaa0000000000000000000000000003", Number: "RITM0010003", Approval: "approved", State: "3",
			CatItem: "Duo MFA Enrollment", UpdatedOn: "2026-02-02 00:00:00"}, // no requester: an empty reference
	},
}

func TestDisplayValueModes(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed})
	fields := []string{"number", "sys_id", "state", "approval", "cat_item", "requested_for", "requested_for.name", "sys_updated_on"}
	cases := []struct {
		mode string
		excl bool
		want map[string]string
	}{
		{"false", false, map[string]string{"state": "2", "approval": "approved", "cat_item": "0d08837237153000158bbfc8bcbe5d02",
			"requested_for": "62826bf03710200044e0bfc8bcbe5df1", "requested_for.name": "Fred Johnson"}},
		{"false", true, map[string]string{"state": "2", "cat_item": "0d08837237153000158bbfc8bcbe5d02"}},
		{"true", false, map[string]string{"state": "Work in Progress", "approval": "Approved", "cat_item": "Duo MFA Enrollment",
			"requested_for": "Fred Johnson"}},
		{"true", true, map[string]string{"state": "Work in Progress", "cat_item": "Duo MFA Enrollment"}},
		{"all", false, map[string]string{"state": "2", "approval": "approved", "cat_item": "Duo MFA Enrollment",
			"cat_item.sys_id": "0d08837237153000158bbfc8bcbe5d02", "requested_for": "Fred Johnson",
			"requested_for.sys_id": "62826bf03710200044e0bfc8bcbe5df1", "sys_updated_on": "2026-02-01 10:00:00"}},
		// With excl=true under "all" a reference cannot be told from another field: value it is.
		{"all", true, map[string]string{"state": "2", "cat_item": "0d08837237153000158bbfc8bcbe5d02"}},
	}
	for _, tc := range cases {
		c := newClient(t, srv, servicenow.Config{DisplayValue: tc.mode, ExcludeReferenceLink: tc.excl, Fields: fields,
			GroupVariable: "-", Query: "number=RITM0010001^ORnumber=RITM0010003"})
		got, info := fetchAll(t, c)
		if len(got) != 2 {
			t.Fatalf("mode %s excl %v: %d records", tc.mode, tc.excl, len(got))
		}
		for k, v := range tc.want {
			if got[0].Get(k) != v {
				t.Errorf("mode %s excl %v: %s = %q, want %q", tc.mode, tc.excl, k, got[0].Get(k), v)
			}
		}
		if r := got[1]; r.Get("requested_for") != "" || r.Get("requested_for.name") != "" {
			t.Errorf("mode %s: empty reference gave %q / %q", tc.mode, r.Get("requested_for"), r.Get("requested_for.name"))
		}
		wantMax := "2026-02-02 00:00:00"
		if tc.mode == "true" {
			wantMax = ""
		}
		if info.MaxUpdated != wantMax {
			t.Errorf("mode %s: MaxUpdated %q, want %q", tc.mode, info.MaxUpdated, wantMax)
		}
	}
}

func TestCatalogVariableRoutes(t *testing.T) {
	cases := []struct {
		name      string
		opts      sntest.Options
		cfg       servicenow.Config
		wantCalls bool
	}{
		{"mtom by default", sntest.Options{}, servicenow.Config{}, true},
		{"variables field answered", sntest.Options{},
			servicenow.Config{Fields: append(append([]string{}, servicenow.DefaultFields...), "variables.duo_group")}, false},
		{"variables field ignored by the instance: falls back to mtom", sntest.Options{NoVariablesField: true},
			servicenow.Config{Fields: append(append([]string{}, servicenow.DefaultFields...), "variables.duo_group")}, true},
		{"forced mtom", sntest.Options{},
			servicenow.Config{Fields: append(append([]string{}, servicenow.DefaultFields...), "variables.duo_group"), VariablesViaMTOM: true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Seed = smallSeed
			srv := startEmulator(t, tc.opts)
			got, _ := fetchAll(t, newClient(t, srv, tc.cfg))
			byNum := map[string]string{}
			for _, r := range got {
				v, ok := r.Fields["variables.duo_group"]
				if !ok {
					t.Errorf("%s: no variables.duo_group", r.Number())
				}
				byNum[r.Number()] = v
			}
			want := map[string]string{"RITM0010001": "Engineering, Platform", "RITM0010002": "VPN Users", "RITM0010003": ""}
			for k, v := range want {
				if byNum[k] != v {
					t.Errorf("%s: duo_group %q, want %q", k, byNum[k], v)
				}
			}
			mtom := srv.Stats().ByEndpoint["GET sc_item_option_mtom"]
			if (mtom > 0) != tc.wantCalls {
				t.Errorf("sc_item_option_mtom calls: %d, want some: %v", mtom, tc.wantCalls)
			}
		})
	}
}

func TestWatermark(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed})
	c := newClient(t, srv, servicenow.Config{UpdatedSince: "2026-02-02 00:00:00",
		Query: "approval=approved^NQapproval=requested"})
	got, info := fetchAll(t, c)
	nums := []string{}
	for _, r := range got {
		nums = append(nums, r.Number())
	}
	if strings.Join(nums, ",") != "RITM0010002,RITM0010003" && strings.Join(nums, ",") != "RITM0010003,RITM0010002" {
		t.Errorf("got %v, want RITM0010002 and RITM0010003", nums)
	}
	if info.MaxUpdated != "2026-02-03 09:30:00" {
		t.Errorf("MaxUpdated %q", info.MaxUpdated)
	}
	if want := "approval=approved^sys_updated_on>=2026-02-02 00:00:00^NQapproval=requested^sys_updated_on>=2026-02-02 00:00:00^ORDERBYsys_id"; c.Query() != want {
		t.Errorf("query %q\nwant  %q", c.Query(), want)
	}
	if _, err := servicenow.New(servicenow.Config{Instance: srv.URL(), User: "u", Password: "p",
		UpdatedSince: "2026-02-02^ORactive=false"}); err == nil {
		t.Error("a watermark that injects a query was accepted")
	}
}

func TestFetchRetriesFaults(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Generate: 80, FaultRate: 0.3, FaultSeed: 11})
	c := newClient(t, srv, servicenow.Config{PageSize: 10, MaxAttempts: 10})
	got, _ := fetchAll(t, c)
	if len(got) != 80 {
		t.Errorf("got %d records, want 80", len(got))
	}
	if srv.Stats().Faults == 0 || c.Stats().Retries == 0 {
		t.Errorf("no faults exercised: %+v %+v", srv.Stats(), c.Stats())
	}
}

func TestErrorsAreReadableAndFailTheFetch(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed})
	cases := []struct {
		name string
		cfg  servicenow.Config
		want string
	}{
		{"wrong password", servicenow.Config{User: srv.User(), Password: "wrong-password-123"},
			"ServiceNow GET sc_req_item: 401 User Not Authenticated: Required to provide Auth information"},
		{"unknown table", servicenow.Config{Table: "u_nope"}, "ServiceNow GET u_nope: 400 Invalid table u_nope"},
	}
	for _, tc := range cases {
		c := newClient(t, srv, tc.cfg)
		_, err := c.Fetch(context.Background(), func(source.Request) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-password-123") {
			t.Errorf("%s: password in error: %v", tc.name, err)
		}
		var apiErr *servicenow.APIError
		if !errors.As(err, &apiErr) {
			t.Errorf("%s: not an *APIError: %T", tc.name, err)
		}
	}
}

func TestHTML200IsRefused(t *testing.T) {
	login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Log in | ServiceNow</title></head><body>login</body></html>"))
	}))
	defer login.Close()
	c, err := servicenow.New(servicenow.Config{Instance: login.URL, User: "u", Password: "pw-secret-1"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = c.Fetch(context.Background(), func(source.Request) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), `HTML page (title "Log in | ServiceNow")`) || n != 0 {
		t.Fatalf("err %v, %d records", err, n)
	}
}

func TestMissingTotalCountAndLinkIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":[{"sys_id":"a","number":"RITM1"}]}`))
	}))
	defer srv.Close()
	c, _ := servicenow.New(servicenow.Config{Instance: srv.URL, User: "u", Password: "p"})
	if _, err := c.Fetch(context.Background(), func(source.Request) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "cannot be known complete") {
		t.Fatalf("err %v", err)
	}
}

// Secrets never show: not in errors (even when a server echoes them), not in logs.
func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	srv := startEmulator(t, sntest.Options{ClientID: "duosync-client", Seed: smallSeed, FaultRate: 0.4, FaultSeed: 5})
	c := newClient(t, srv, servicenow.Config{User: srv.User(), Password: srv.Password(), ClientID: srv.ClientID(),
		ClientSecret: srv.ClientSecret(), Logger: logger, PageSize: 1, MaxAttempts: 10})
	fetchAll(t, c)
	srv.RevokeTokens()
	fetchAll(t, c)

	bad := newClient(t, srv, servicenow.Config{User: srv.User(), Password: srv.Password(), ClientID: srv.ClientID(),
		ClientSecret: "not-the-secret-xyz", Logger: logger, MaxAttempts: 1})
	_, err := bad.Fetch(context.Background(), func(source.Request) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "401 server_error: access_denied") {
		t.Fatalf("bad client secret: %v", err)
	}

	// A server that echoes the Authorization header into its error body.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"message":"Denied","detail":"you sent ` + r.Header.Get("Authorization") + ` and basic pw-echo-secret"},"status":"failure"}`))
	}))
	defer echo.Close()
	ec, _ := servicenow.New(servicenow.Config{Instance: echo.URL, User: "u", Password: "pw-echo-secret", Logger: logger})
	_, echoErr := ec.Fetch(context.Background(), func(source.Request) error { return nil })

	mu.Lock()
	text := logs.String() + "\n" + err.Error() + "\n" + echoErr.Error()
	mu.Unlock()
	for _, secret := range []string{srv.Password(), srv.ClientSecret(), "not-the-secret-xyz", "pw-echo-secret"} {
		if strings.Contains(text, secret) {
			t.Errorf("secret %q appears in logs or errors", secret)
		}
	}
	if strings.Contains(text, "Bearer ") && !strings.Contains(text, "[redacted]") {
		t.Errorf("a bearer token may be in the output")
	}
	if !strings.Contains(echoErr.Error(), "[redacted]") {
		t.Errorf("echoed secret not redacted: %v", echoErr)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestWriteBack(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed, DenyWrite: []string{"aaaa0000000000000000000000000002"}})
	c := newClient(t, srv, servicenow.Config{})
	ctx := context.Background()

	if err := c.WriteBack(ctx, "aaaa0000000000000000000000000001", "Duo: user created, enrollment email sent, added to MFA Users", "3"); err != nil {
		t.Fatal(err)
	}
	r, _ := srv.State().Request("RITM0010001")
	if len(r.WorkNotes) != 1 || r.WorkNotes[0].Value != "Duo: user created, enrollment email sent, added to MFA Users" || r.State != "3" {
		t.Fatalf("state after write-back: %+v", r)
	}
	if err := c.WriteBack(ctx, "aaaa0000000000000000000000000001", "second note", ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := srv.State().Request("RITM0010001"); len(r.WorkNotes) != 2 || r.State != "3" {
		t.Fatalf("second note: %+v", r)
	}

	err := c.WriteBack(ctx, "aaaa0000000000000000000000000002", "note", "")
	if err == nil || !strings.Contains(err.Error(), "ServiceNow PATCH sc_req_item/aaaa0000000000000000000000000002: 403 Operation Failed: ACL Exception Update Failed due to security constraints") {
		t.Errorf("denied write: %v", err)
	}
	if servicenow.IsOutcomeUnknown(err) {
		t.Errorf("a 403 is a known outcome")
	}
	if err := c.WriteBack(ctx, "ffff0000000000000000000000000000", "note", ""); err == nil || !strings.Contains(err.Error(), "404 No Record found") {
		t.Errorf("missing record: %v", err)
	}
	for _, bad := range []string{"", "../sys_user/x", "a/b", strings.Repeat("a", 65)} {
		if err := c.WriteBack(ctx, bad, "note", ""); err == nil {
			t.Errorf("sys_id %q accepted", bad)
		}
	}
	if c.Stats().WriteBackFails != 2 {
		t.Errorf("stats %+v", c.Stats())
	}
}

// A PATCH whose answer is lost may have been applied: it is reported, not
// retried. Only a 503 (not taken by the instance) is retried.
func TestWriteBackOutcomeUnknownIsNotRetried(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed, FaultRate: 1, FaultSeed: 2})
	c := newClient(t, srv, servicenow.Config{MaxAttempts: 5})
	var unknown, failed int
	for i := 0; i < 12; i++ {
		err := c.WriteBack(context.Background(), "aaaa0000000000000000000000000001", "note", "")
		if err == nil {
			t.Fatal("write-back succeeded with every request faulted")
		}
		if servicenow.IsOutcomeUnknown(err) {
			unknown++
		} else {
			failed++
		}
	}
	st := srv.Stats()
	got := st.ByEndpoint["PATCH sc_req_item/{sys_id}"]
	if got < 12 || got > 12*5 {
		t.Errorf("%d PATCHes for 12 write-backs", got)
	}
	r, _ := srv.State().Request("RITM0010001")
	// Every applied PATCH is one write-back: none was repeated after it
	// may have landed.
	if unknown == 0 || len(r.WorkNotes) > 12 || int64(len(r.WorkNotes)) != st.Patches {
		t.Errorf("unknown %d failed %d, notes %d, patches applied %d", unknown, failed, len(r.WorkNotes), st.Patches)
	}
	if got > 12 && failed+unknown != 12 {
		t.Errorf("retries changed the outcome count: %d+%d", failed, unknown)
	}
}

// A 503 to a PATCH was not taken by the instance: it is retried, and the
// note lands once.
func TestWriteBack503IsRetried(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Seed: smallSeed})
	target, _ := url.Parse(srv.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch && refused.CompareAndSwap(false, true) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"message":"Service Unavailable","detail":null},"status":"failure"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := servicenow.New(servicenow.Config{Instance: front.URL, User: srv.User(), Password: srv.Password(), RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteBack(context.Background(), "aaaa0000000000000000000000000001", "note 503", ""); err != nil {
		t.Fatalf("write-back after a 503: %v", err)
	}
	r, _ := srv.State().Request("RITM0010001")
	if !refused.Load() || len(r.WorkNotes) != 1 {
		t.Errorf("refused %v, notes %+v: want one 503 then exactly one note", refused.Load(), r.WorkNotes)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []servicenow.Config{
		{Instance: "", User: "u", Password: "p"},
		{Instance: "http://example.service-now.com", User: "u", Password: "p"},
		{Instance: "https://u:p@example.service-now.com", User: "u", Password: "p"},
		{Instance: "https://example.service-now.com/path", User: "u", Password: "p"},
		{Instance: "https://example.service-now.com"},
		{Instance: "https://example.service-now.com", User: "u"},
		{Instance: "https://example.service-now.com", ClientID: "id"},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", Table: "sc_req_item/../x"},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", DisplayValue: "maybe"},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", PageSize: -1},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", Fields: []string{"number,sys_id^x"}},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", GroupVariable: "duo_group^ORx"},
		{Instance: "https://example.service-now.com", User: "u", Password: "p", CAFile: "/nonexistent.pem"},
	}
	for _, cfg := range cases {
		if _, err := servicenow.New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		} else if strings.Contains(err.Error(), "p@") {
			t.Errorf("error repeats credentials: %v", err)
		}
	}
	c, err := servicenow.New(servicenow.Config{Instance: "example.service-now.com", User: "u", Password: "p"})
	if err != nil || c.Instance() != "https://example.service-now.com" {
		t.Errorf("bare host: %v %v", c, err)
	}
}

func TestRetryAfterLongerThanAllowedFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 100 requests per hour for Table API exceeded"},"status":"failure"}`))
	}))
	defer srv.Close()
	c, _ := servicenow.New(servicenow.Config{Instance: srv.URL, User: "u", Password: "p", MaxRetryAfter: time.Minute})
	_, err := c.Fetch(context.Background(), func(source.Request) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "429 Rate limit exceeded: Rate limit of 100 requests per hour for Table API exceeded") ||
		!strings.Contains(err.Error(), "Retry-After 1h0m0s exceeds") {
		t.Fatalf("err %v", err)
	}
}

func TestFetchStopsOnEmitErrorAndContext(t *testing.T) {
	srv := startEmulator(t, sntest.Options{Generate: 30})
	c := newClient(t, srv, servicenow.Config{PageSize: 5})
	stop := errors.New("stop")
	n := 0
	_, err := c.Fetch(context.Background(), func(source.Request) error {
		n++
		if n == 7 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 7 {
		t.Errorf("err %v after %d", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Fetch(ctx, func(source.Request) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// BenchmarkFetch reads 10,000 generated requests in pages of 1,000 with
// their catalog variables through sc_item_option_mtom (run by make bench).
func BenchmarkFetch(b *testing.B) {
	srv, err := sntest.NewServer(sntest.Options{Generate: 10000, GenerateSeed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := servicenow.New(servicenow.Config{Instance: srv.URL(), User: srv.User(), Password: srv.Password(), PageSize: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	records := 0
	for i := 0; i < b.N; i++ {
		info, err := c.Fetch(context.Background(), func(source.Request) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		records += info.Records
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(c.Stats().Requests)/float64(b.N), "requests/op")
}
