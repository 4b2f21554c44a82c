package servicenow_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
)

// pagingResult is what a Fetch against a scripted Table API returned.
type pagingResult struct {
	ids   []string
	info  servicenow.FetchInfo
	err   error
	calls int64
}

// fetchScripted runs a Fetch in pages of 10, with no catalog variable, against
// a server whose answer to each GET is page(w, offset, limit).
func fetchScripted(t *testing.T, page func(w http.ResponseWriter, offset, limit int)) pagingResult {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		off, _ := strconv.Atoi(r.URL.Query().Get("sysparm_offset"))
		lim, _ := strconv.Atoi(r.URL.Query().Get("sysparm_limit"))
		w.Header().Set("Content-Type", "application/json")
		page(w, off, lim)
	}))
	defer srv.Close()
	c, err := servicenow.New(servicenow.Config{Instance: srv.URL, User: "u", Password: "p", DisplayValue: "false",
		GroupVariable: "-", PageSize: 10, MaxAttempts: 1, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res pagingResult
	res.info, res.err = c.Fetch(ctx, func(r source.Request) error {
		res.ids = append(res.ids, r.Fields["sys_id"])
		return nil
	})
	res.calls = calls.Load()
	return res
}

// writeRecords writes a page holding records from..from+n-1.
func writeRecords(w http.ResponseWriter, from, n int) {
	recs := make([]string, 0, max(n, 0))
	for i := from; i < from+n; i++ {
		recs = append(recs, fmt.Sprintf(`{"sys_id":"%032x","number":"RITM%07d"}`, i, i))
	}
	_, _ = io.WriteString(w, `{"result":[`+strings.Join(recs, ",")+`]}`)
}

func wantFetchErr(t *testing.T, r pagingResult, wantCalls int64, parts ...string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("no error after %d records in %d calls", len(r.ids), r.calls)
	}
	for _, p := range parts {
		if !strings.Contains(r.err.Error(), p) {
			t.Errorf("error %q does not say %q", r.err, p)
		}
	}
	if r.calls != wantCalls {
		t.Errorf("%d calls, want %d (err %v)", r.calls, wantCalls, r.err)
	}
}

func TestEmptyPagesAreBounded(t *testing.T) {
	t.Run("huge count", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("X-Total-Count", "2000000000")
			writeRecords(w, off, max(0, min(lim, 5-off)))
		})
		// One page of records, then 50 empty pages: not 200 million.
		wantFetchErr(t, r, 51, "sc_req_item", "X-Total-Count says 2000000000", "50 pages in a row were empty", "offsets 10 to 500")
	})
	t.Run("ACL-hidden run below the bound", func(t *testing.T) {
		// Pages 1..49 hide every record (49 empty pages), page 50 has ten again.
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("X-Total-Count", "510")
			if off == 0 || off == 500 {
				writeRecords(w, off, lim)
				return
			}
			writeRecords(w, off, 0)
		})
		if r.err != nil || len(r.ids) != 20 || r.calls != 51 || r.info.Total != 510 {
			t.Fatalf("%d records in %d calls, info %+v, err %v; want 20 in 51", len(r.ids), r.calls, r.info, r.err)
		}
	})
	t.Run("Link next with empty pages", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("Link", fmt.Sprintf(`<https://x.service-now.com/api/now/table/sc_req_item?sysparm_offset=%d&sysparm_limit=%d>;rel="next"`, off+lim, lim))
			writeRecords(w, off, 0)
		})
		wantFetchErr(t, r, 50, "Link header kept offering a next page", "50 pages in a row were empty")
	})
}

func TestPagingThatNeverAdvancesFails(t *testing.T) {
	t.Run("Link next points back", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, _, _ int) {
			w.Header().Set("Link", `<https://x.service-now.com/api/now/table/sc_req_item?sysparm_offset=0&sysparm_limit=10>;rel="next"`)
			writeRecords(w, 0, 10)
		})
		wantFetchErr(t, r, 1, "sc_req_item", "rel=next points to offset 0", "does not move forward")
	})
	t.Run("offset ignored, Link moves on", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("Link", fmt.Sprintf(`<https://x.service-now.com/api/now/table/sc_req_item?sysparm_offset=%d&sysparm_limit=%d>;rel="next"`, off+lim, lim))
			writeRecords(w, 0, 10) // the same ten records, whatever was asked
		})
		wantFetchErr(t, r, 4, "3 pages in a row (offsets 10 to 30) held only records already read", "ignoring sysparm_offset")
		if len(r.ids) != 10 {
			t.Errorf("%d records emitted from ten distinct ones", len(r.ids))
		}
	})
	t.Run("offset ignored, huge count", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, _, _ int) {
			w.Header().Set("X-Total-Count", "2000000000")
			writeRecords(w, 0, 10)
		})
		wantFetchErr(t, r, 4, "ignoring sysparm_offset")
	})
}

func TestPagesPastTheCount(t *testing.T) {
	t.Run("count stays low while full pages keep coming", func(t *testing.T) {
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("X-Total-Count", "5")
			writeRecords(w, off, lim)
		})
		wantFetchErr(t, r, 10, "X-Total-Count says 5", "offset 90 ends at record 100", "10 pages in a row")
	})
	t.Run("count grows while paging", func(t *testing.T) {
		// The first count was taken before 8 records were inserted; the
		// second page's count has them.
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			if off == 0 {
				w.Header().Set("X-Total-Count", "5")
				writeRecords(w, 0, lim)
				return
			}
			w.Header().Set("X-Total-Count", "13")
			writeRecords(w, off, max(0, min(lim, 13-off)))
		})
		if r.err != nil || len(r.ids) != 13 || r.calls != 2 || r.info.Total != 13 {
			t.Fatalf("%d records in %d calls, info %+v, err %v; want 13 in 2", len(r.ids), r.calls, r.info, r.err)
		}
	})
	t.Run("stale count, data ends", func(t *testing.T) {
		// 25 records behind a count stuck at 5: read to the empty page past them.
		r := fetchScripted(t, func(w http.ResponseWriter, off, lim int) {
			w.Header().Set("X-Total-Count", "5")
			writeRecords(w, off, max(0, min(lim, 25-off)))
		})
		if r.err != nil || len(r.ids) != 25 || r.calls != 4 {
			t.Fatalf("%d records in %d calls, info %+v, err %v; want 25 in 4", len(r.ids), r.calls, r.info, r.err)
		}
	})
}
