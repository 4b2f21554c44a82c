package duotest

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServeHTTP: no request, however malformed, makes the emulator panic,
// and every API answer is Duo's JSON envelope. `go test` runs the seeds;
// `go test -fuzz FuzzServeHTTP` explores.
func FuzzServeHTTP(f *testing.F) {
	f.Add("GET", "/admin/v1/users?limit=5", "", "", "Basic Zm9vOmJhcg==")
	f.Add("POST", "/admin/v1/users", "username=a&alias1=b", "application/x-www-form-urlencoded", "Basic !!")
	f.Add("POST", "/admin/v1/users/bulk_create", `{"users":[{"username":null}]}`, "application/json", "")
	f.Add("DELETE", "/admin/v1/users//groups/", "%zz", "", "Basic OmFiYw==")
	f.Add("PATCH", "/", "\x00", "text/plain", "Basic")
	s, err := newServer(Options{GenerateUsers: 3, GenerateGroups: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, body, ctype, authz string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method = method
		if u, err := req.URL.Parse(target); err == nil {
			req.URL = u
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", authz)
		req.Header.Set("Date", "Mon, 02 Jan 2006 15:04:05 -0700")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if strings.HasPrefix(req.URL.Path, "/_emulator/") {
			return
		}
		if rec.Code == 200 || !strings.Contains(rec.Body.String(), `"stat":"FAIL"`) {
			t.Errorf("%s %s: HTTP %d %s", method, target, rec.Code, rec.Body)
		}
	})
}
