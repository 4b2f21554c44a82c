package hostile

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
)

const snPassword = "HOSTILE-sn-password-3141592653"

// snAnswer answers one Table API GET of the main table.
type snAnswer func(w http.ResponseWriter, offset, limit int)

func snRecord(i int) string {
	return fmt.Sprintf(`{"number":"RITM%07d","sys_id":"%032x","approval":"approved","state":"1","cat_item":"Duo MFA Enrollment",`+
		`"requested_for.user_name":"user%d","requested_for.email":"user%d@example.com","requested_for.active":"true","sys_updated_on":"2026-11-30 14:05:12"}`, i, i, i, i)
}

func snPage(w http.ResponseWriter, from, n int) {
	var recs []string
	for i := from; i < from+n; i++ {
		recs = append(recs, snRecord(i))
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"result":[`+strings.Join(recs, ",")+`]}`)
}

type snRead struct {
	reqs  []source.Request
	info  servicenow.FetchInfo
	err   error
	calls int64
}

// fetch runs a Fetch against answer with Basic auth, fast retries, raw
// values, no catalog variable (so that only the main table is read) and
// pages of 10.
func fetch(answer snAnswer) snRead {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		off, _ := strconv.Atoi(q.Get("sysparm_offset"))
		lim, _ := strconv.Atoi(q.Get("sysparm_limit"))
		w.Header().Set("Content-Type", "application/json") // an answer may override it
		answer(w, off, lim)
	}))
	defer srv.Close()
	c, err := servicenow.New(servicenow.Config{Instance: srv.URL, User: "duosync", Password: snPassword,
		DisplayValue: "false", GroupVariable: "-", PageSize: 10, MaxAttempts: 2, RetryBaseDelay: time.Millisecond})
	if err != nil {
		return snRead{err: fmt.Errorf("servicenow.New: %w", err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readDeadline)
	defer cancel()
	var out snRead
	out.info, out.err = c.Fetch(ctx, func(r source.Request) error {
		out.reqs = append(out.reqs, r)
		return nil
	})
	out.calls = calls.Load()
	if ctx.Err() != nil && out.err != nil {
		out.err = fmt.Errorf("only stopped at the deadline, after %d calls: %w", out.calls, out.err)
	}
	return out
}

// fetchFails checks that Fetch fails with an error holding every part and
// no password, after a bounded number of calls.
func fetchFails(answer snAnswer, parts ...string) error {
	r := fetch(answer)
	if r.err == nil {
		return fmt.Errorf("Fetch read %d records in %d calls with no error", len(r.reqs), r.calls)
	}
	if strings.Contains(r.err.Error(), "only stopped at the deadline") {
		return r.err
	}
	return firstErr(wantErr(r.err, parts...), wantNoSecret(r.err.Error(), snPassword))
}

func serviceNowCases() []hostileCase {
	return []hostileCase{
		{area: "servicenow", name: "total-count-bigger",
			what: "X-Total-Count says 25 but the instance has 12 records (pages after 12 come back empty)",
			want: "the 12 read, in three pages (ACL-hidden rows look exactly like this), then done",
			run: func(string) error {
				r := fetch(func(w http.ResponseWriter, off, lim int) {
					w.Header().Set("X-Total-Count", "25")
					n := max(0, min(lim, 12-off))
					snPage(w, off, n)
				})
				if r.err != nil || len(r.reqs) != 12 || r.calls != 3 {
					return fmt.Errorf("read %d records in %d calls, err %v", len(r.reqs), r.calls, r.err)
				}
				return nil
			}},
		{area: "servicenow", name: "total-count-huge",
			what: "X-Total-Count says 2,000,000,000 and every page after the first is empty",
			want: "the read fails (or stops) in bounded time instead of asking for 200 million empty pages",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, off, lim int) {
					w.Header().Set("X-Total-Count", "2000000000")
					snPage(w, off, max(0, min(lim, 5-off)))
				}, "X-Total-Count")
			}},
		{area: "servicenow", name: "total-count-smaller",
			what: "X-Total-Count says 5 while full pages of 10 keep coming",
			want: "the read fails: a page holds more records than the count allows, so the count cannot be trusted",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, off, lim int) {
					w.Header().Set("X-Total-Count", "5")
					snPage(w, off, lim)
				}, "X-Total-Count")
			}},
		{area: "servicenow", name: "total-count-garbage",
			what: "X-Total-Count is \"lots\" and there is no Link header",
			want: "the read fails: it cannot be known complete",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, off, lim int) {
					w.Header().Set("X-Total-Count", "lots")
					snPage(w, off, min(lim, 3))
				}, "cannot be known complete")
			}},
		{area: "servicenow", name: "html-200",
			what: "a 200 answer whose body is the instance's HTML login page (SSO redirect, hibernating instance)",
			want: "the read fails naming the table and the offset",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("Content-Type", "text/html")
					io.WriteString(w, "<html><head><title>Instance Hibernating page</title></head><body>Log in</body></html>")
				}, "sc_req_item", "offset 0")
			}},
		{area: "servicenow", name: "huge-json",
			what: "a 100 MB page (streamed)",
			want: "the read fails at the body limit; memory stays bounded",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "1")
					bw := bufio.NewWriterSize(w, 1<<20)
					bw.WriteString(`{"result":[`)
					rec := snRecord(1) + ","
					for n := 0; n < 100<<20; n += len(rec) {
						if _, err := bw.WriteString(rec); err != nil {
							return
						}
					}
					bw.WriteString(snRecord(2) + "]}")
					bw.Flush()
				}, "larger than")
			}},
		{area: "servicenow", name: "deep-json",
			what: "a page whose first record's number is nested 100,000 objects deep",
			want: "the read fails with a decoding error",
			run: func(string) error {
				body := `{"result":[{"sys_id":"a","number":` + strings.Repeat(`{"value":`, 100_000) + `"x"` + strings.Repeat("}", 100_000) + `}]}`
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "1")
					io.WriteString(w, body)
				}, "sc_req_item")
			}},
		{area: "servicenow", name: "link-loops",
			what: "no X-Total-Count and a Link header whose next always points back to offset 0",
			want: "the read fails (or ends) in bounded time, never loops",
			run: func(string) error {
				r := fetch(func(w http.ResponseWriter, off, lim int) {
					w.Header().Set("Link", `<https://x.service-now.com/api/now/table/sc_req_item?sysparm_offset=0&sysparm_limit=10>;rel="next",`+
						`<https://x.service-now.com/api/now/table/sc_req_item?sysparm_offset=0&sysparm_limit=10>;rel="first"`)
					snPage(w, 0, 10) // the same ten records, whatever was asked
				})
				if r.err != nil {
					if strings.Contains(r.err.Error(), "deadline") {
						return r.err
					}
					return wantErr(r.err, "sc_req_item")
				}
				if len(r.reqs) != 10 {
					return fmt.Errorf("%d records emitted from ten distinct ones", len(r.reqs))
				}
				return nil
			}},
		{area: "servicenow", name: "invalid-utf8",
			what: "every field of a record holds bytes that are not UTF-8",
			want: "the read fails, or every emitted value is valid UTF-8 (replacement characters)",
			run: func(string) error {
				r := fetch(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "1")
					io.WriteString(w, "{\"result\":[{\"number\":\"RITM\xff1\",\"sys_id\":\"a\xfe\",\"approval\":\"appro\xc3\x28ved\",\"requested_for.email\":\"j\xe9@example.com\"}]}")
				})
				if r.err != nil {
					return wantErr(r.err, "sc_req_item")
				}
				for _, q := range r.reqs {
					for k, v := range q.Fields {
						if !utf8.ValidString(v) {
							return fmt.Errorf("field %s = %q is not valid UTF-8", k, v)
						}
					}
				}
				return nil
			}},
		{area: "servicenow", name: "result-not-array",
			what: `{"result":{"number":"RITM1"}} (an object where a list belongs)`,
			want: "the read fails naming the table",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "1")
					io.WriteString(w, `{"result":{"number":"RITM1","sys_id":"a"}}`)
				}, "sc_req_item")
			}},
		{area: "servicenow", name: "result-missing",
			what: `{"error":{"message":"x"},"status":"failure"} with status 200`,
			want: "the read fails; never an empty result",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "0")
					io.WriteString(w, `{"error":{"message":"Invalid table","detail":"x"},"status":"failure"}`)
				}, "sc_req_item")
			}},
		{area: "servicenow", name: "record-without-sys_id",
			what: "a record with no sys_id (an ACL hides it)",
			want: "the read fails naming the record",
			run: func(string) error {
				return fetchFails(func(w http.ResponseWriter, _, _ int) {
					w.Header().Set("X-Total-Count", "2")
					io.WriteString(w, `{"result":[`+snRecord(1)+`,{"number":"RITM2"}]}`)
				}, "record 1", "sys_id")
			}},
	}
}
