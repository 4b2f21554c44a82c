package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/duosync/duosync/source"
)

// FetchInfo sums up a Fetch.
type FetchInfo struct {
	Total   int // X-Total-Count of the last page: matching records, ACL-hidden ones included
	Pages   int // pages of the main table read
	Records int // records emitted (each sys_id once)
	// MaxUpdated is the newest sys_updated_on seen (raw UTC), the next
	// run's UpdatedSince; "" when none or with DisplayValue "true" (dates
	// are then in the user's time zone and format).
	MaxUpdated string
}

// Fetch streams every record matching the query, each sys_id once, as a
// source.Request keyed by field name (see flattenRecord for references and
// display values) with Origin.File set to the instance URL. The catalog
// variable, when configured, is in Fields["variables.<name>"]. Any failed
// page fails the whole Fetch: a partial read must never look complete.
func (c *Client) Fetch(ctx context.Context, emit func(source.Request) error) (FetchInfo, error) {
	var info FetchInfo
	seen := map[string]bool{}
	mode := c.cfg.DisplayValue
	total, pages, err := c.list(ctx, c.cfg.Table, c.query(), c.fields, mode, c.cfg.ExcludeReferenceLink,
		func(recs []map[string]string, offset int) error {
			if err := c.fillVariables(ctx, recs, offset); err != nil {
				return err
			}
			for _, r := range recs {
				id := r["sys_id"]
				if seen[id] {
					continue // a record that moved between pages while paging
				}
				seen[id] = true
				if mode != "true" && r["sys_updated_on"] > info.MaxUpdated {
					info.MaxUpdated = r["sys_updated_on"]
				}
				c.stats.records.Add(1)
				info.Records++
				if err := emit(source.Request{Fields: r, Origin: source.Origin{File: c.origin}}); err != nil {
					return err
				}
			}
			return nil
		})
	info.Total, info.Pages = total, pages
	return info, err
}

// query is the configured query with the watermark and the stable order.
func (c *Client) query() string {
	q := strings.Trim(strings.TrimSpace(c.cfg.Query), "^")
	if c.cfg.UpdatedSince != "" {
		cond := "sys_updated_on>=" + c.cfg.UpdatedSince
		// ^NQ starts an OR'd query: the watermark must hold in each.
		sections := strings.Split(q, "^NQ")
		for i, s := range sections {
			if s = strings.Trim(s, "^"); s == "" {
				sections[i] = cond
			} else {
				sections[i] = s + "^" + cond
			}
		}
		q = strings.Join(sections, "^NQ")
	}
	if q != "" {
		q += "^"
	}
	return q + "ORDERBYsys_id"
}

// Paging bounds. Each turns an instance that lies about its size, or never
// stops offering a next page, into a failed read in bounded time, with an
// error that says what was seen.
const (
	// maxEmptyRun is how many empty pages in a row a read accepts while
	// X-Total-Count (or Link rel=next) says there is more. Empty pages are
	// legitimate: sysparm_limit is applied before ACLs, so a page of
	// records the integration user cannot read comes back empty. But 50 in
	// a row is 50 × PageSize hidden records in a row (50,000 at the default
	// page size), far more likely a wrong count than real ACLs; without a
	// bound, "X-Total-Count: 2000000000" would mean 200 million requests.
	maxEmptyRun = 50
	// maxStaleRun is how many pages in a row may hold only records already
	// read: an instance (or proxy) ignoring sysparm_offset. One such page
	// can be legitimate: when PageSize records before the offset are
	// deleted mid-read, the rest shift back by a page.
	maxStaleRun = 3
	// maxOvershootRun is how many pages in a row may end past their own
	// X-Total-Count before the count is judged wrong (see list).
	maxOvershootRun = 10
)

// list pages through a table by offset and calls fn per page.
//
// With X-Total-Count, paging ends when the offset reaches the count, not
// at a short page (sysparm_limit is applied before ACLs, so short and even
// empty pages come before the end). The count is read again on every page,
// so records inserted while paging are read too. When the Link header's
// next offset is smaller than offset+limit (an instance capping the page
// size), it is followed.
//
// A page that ends past its own count (offset+records > X-Total-Count)
// proves the count low: stale, from records inserted between the count and
// the page, or wrong. Stopping there could return a partial read with a nil
// error, so reading goes on past the count; it ends normally once a page
// agrees with its count again (the next page's fresh count shows the
// growth, or an empty page past the count shows there is nothing more).
// After maxOvershootRun such pages in a row the read fails: the count
// cannot say when the read is complete.
//
// Without X-Total-Count, paging follows Link rel=next and ends when a page
// has none; a next link that does not move forward fails the read.
//
// In both modes a read that goes on fails after maxEmptyRun empty pages or
// maxStaleRun pages of already-read records in a row.
func (c *Client) list(ctx context.Context, table, query string, fields []string, mode string, excl bool,
	fn func(recs []map[string]string, offset int) error) (total, pages int, err error) {
	limit := c.cfg.PageSize
	total = -1
	seen := map[string]struct{}{} // sys_ids read so far, to tell a page that brings nothing new
	var emptyRun, staleRun, overshootRun int
	runFrom := 0 // offset of the first page of the current empty or stale run
	for offset := 0; ; {
		q := url.Values{
			"sysparm_query":                  {query},
			"sysparm_display_value":          {mode},
			"sysparm_exclude_reference_link": {strconv.FormatBool(excl)},
			"sysparm_limit":                  {strconv.Itoa(limit)},
			"sysparm_offset":                 {strconv.Itoa(offset)},
		}
		if len(fields) > 0 {
			q.Set("sysparm_fields", strings.Join(fields, ","))
		}
		ans, err := c.do(ctx, call{method: http.MethodGet, path: "/api/now/table/" + table, target: table, query: q})
		if err != nil {
			return total, pages, fmt.Errorf("read %s at offset %d: %w", table, offset, err)
		}
		recs, err := decodePage(ans.body, mode)
		if err != nil {
			return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: %w", table, offset, err)
		}
		fresh := 0
		for i, r := range recs {
			id := r["sys_id"]
			if id == "" {
				return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: record %d has no sys_id (is it readable by the integration user?)", table, offset, i)
			}
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				fresh++
			}
		}
		pages++
		c.stats.pages.Add(1)
		count, hasCount := totalCount(ans.header)
		c.log.DebugContext(ctx, "servicenow page", "table", table, "offset", offset, "records", len(recs), "total", count)
		if hasCount && total >= 0 && count != total {
			c.log.WarnContext(ctx, "servicenow result set changed while paging", "table", table, "was", total, "now", count)
		}
		if err := fn(recs, offset); err != nil {
			return total, pages, err
		}

		linkHeader := ans.header.Get("Link")
		links := parseLink(linkHeader)
		nextLink, hasNext := links["next"]
		next := offset + limit
		if n := linkOffset(nextLink); n > offset && n < next {
			next = n
		}
		switch {
		case hasCount:
			total = count
			if len(recs) > 0 && offset+len(recs) > count {
				overshootRun++
				if overshootRun >= maxOvershootRun {
					return total, pages, fmt.Errorf("ServiceNow GET %s: X-Total-Count says %d but the page at offset %d ends at record %d, "+
						"and %d pages in a row held more records than their count: the count cannot tell when the read is complete",
						table, count, offset, offset+len(recs), overshootRun)
				}
				c.log.WarnContext(ctx, "servicenow page holds more records than X-Total-Count; reading on",
					"table", table, "offset", offset, "records", len(recs), "total", count)
				break // read on past the stale count
			}
			overshootRun = 0
			if next >= total {
				return total, pages, nil
			}
		case linkHeader != "":
			if !hasNext {
				return max(total, offset+len(recs)), pages, nil
			}
			if n := linkOffset(nextLink); n >= 0 && n <= offset {
				return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: no X-Total-Count and the Link header's rel=next points to offset %d, "+
					"which does not move forward: the read cannot be known complete", table, offset, n)
			}
		default:
			return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: no X-Total-Count and no Link header, so the read cannot be known complete", table, offset)
		}

		// The read goes on: bound the runs of pages that bring nothing new.
		switch {
		case len(recs) == 0:
			if emptyRun == 0 {
				runFrom = offset
			}
			emptyRun, staleRun = emptyRun+1, 0
		case fresh == 0:
			if staleRun == 0 {
				runFrom = offset
			}
			emptyRun, staleRun = 0, staleRun+1
		default:
			emptyRun, staleRun = 0, 0
		}
		if emptyRun >= maxEmptyRun {
			said := "the Link header kept offering a next page"
			if hasCount {
				said = fmt.Sprintf("X-Total-Count says %d", count)
			}
			return total, pages, fmt.Errorf("ServiceNow GET %s: %s but %d pages in a row were empty (offsets %d to %d); "+
				"ACLs hide records after sysparm_limit is applied, but rarely this many: the count is likely wrong (or the integration user cannot read these records)",
				table, said, emptyRun, runFrom, offset)
		}
		if staleRun >= maxStaleRun {
			return total, pages, fmt.Errorf("ServiceNow GET %s: %d pages in a row (offsets %d to %d) held only records already read: "+
				"the instance or a proxy is ignoring sysparm_offset, so the read would never end", table, staleRun, runFrom, offset)
		}
		offset = next
	}
}

func totalCount(h http.Header) (int, bool) {
	v := strings.TrimSpace(h.Get("X-Total-Count"))
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// variableBatch is how many RITM sys_ids go in one request_itemIN query
// (32 characters each: about 3.3 KB of URL).
const variableBatch = 100

// fillVariables sets Fields["variables.<name>"] on the records that need
// it, from sc_item_option_mtom.
func (c *Client) fillVariables(ctx context.Context, recs []map[string]string, offset int) error {
	if c.varName == "" {
		return nil
	}
	key := "variables." + c.varName
	var need []map[string]string
	for _, r := range recs {
		if _, has := r[key]; c.varMode == "mtom" || !has {
			need = append(need, r)
		}
	}
	for start := 0; start < len(need); start += variableBatch {
		batch := need[start:min(start+variableBatch, len(need))]
		ids := make([]string, len(batch))
		for i, r := range batch {
			ids[i] = r["sys_id"]
		}
		vals, err := c.variables(ctx, ids)
		if err != nil {
			return fmt.Errorf("read catalog variable %s for %s records at offset %d: %w", c.varName, c.cfg.Table, offset, err)
		}
		for _, r := range batch {
			r[key] = vals[r["sys_id"]]
		}
	}
	return nil
}

// variables reads one catalog variable for a batch of RITMs:
// sc_item_option_mtom, raw values, request_item as the RITM's sys_id.
func (c *Client) variables(ctx context.Context, ritmIDs []string) (map[string]string, error) {
	for _, id := range ritmIDs {
		if strings.ContainsAny(id, ",^=") {
			return nil, fmt.Errorf("unexpected sys_id %q", clip(id))
		}
	}
	query := "request_itemIN" + strings.Join(ritmIDs, ",") +
		"^sc_item_option.item_option_new.name=" + c.varName + "^ORDERBYsys_id"
	fields := []string{"sys_id", "request_item", "sc_item_option.item_option_new.name", "sc_item_option.value"}
	out := map[string]string{}
	_, _, err := c.list(ctx, "sc_item_option_mtom", query, fields, "false", true,
		func(recs []map[string]string, _ int) error {
			c.stats.variableCalls.Add(1)
			for _, r := range recs {
				if r["sc_item_option.item_option_new.name"] != c.varName {
					continue
				}
				id := r["request_item"]
				if prev, dup := out[id]; dup && prev != r["sc_item_option.value"] {
					c.log.WarnContext(ctx, "servicenow catalog variable has two values; keeping the first",
						"variable", c.varName, "request_item", id)
					continue
				}
				out[id] = r["sc_item_option.value"]
			}
			return nil
		})
	return out, err
}

// WriteBack adds a work note to one RITM and, when closeState is not "",
// sets its state: PATCH /api/now/table/{table}/{sys_id}. It is never
// retried once it may have been applied: such a failure wraps
// ErrOutcomeUnknown, so the caller can check before writing again.
func (c *Client) WriteBack(ctx context.Context, sysID, workNote, closeState string) error {
	if !sysIDRe.MatchString(sysID) {
		return fmt.Errorf("write back: invalid sys_id %q", clip(sysID))
	}
	if workNote == "" && closeState == "" {
		return fmt.Errorf("write back %s: nothing to write", sysID)
	}
	patch := map[string]string{}
	if workNote != "" {
		patch["work_notes"] = workNote
	}
	if closeState != "" {
		patch["state"] = closeState
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("write back %s: %w", sysID, err)
	}
	c.stats.writeBacks.Add(1)
	target := c.cfg.Table + "/" + sysID
	ans, err := c.do(ctx, call{method: http.MethodPatch, path: "/api/now/table/" + target, target: target,
		query: url.Values{"sysparm_fields": {"sys_id,number,state"}}, body: body})
	if err != nil {
		c.stats.writeBackFails.Add(1)
		return err
	}
	if closeState != "" && len(ans.body) > 0 {
		var res struct {
			Result map[string]json.RawMessage `json:"result"`
		}
		if json.Unmarshal(ans.body, &res) == nil && res.Result["state"] != nil {
			if st, err := decodeField(res.Result["state"]); err == nil && st.value != closeState {
				// The note landed; a business rule or flow kept its own state.
				c.log.WarnContext(ctx, "servicenow state not applied (a flow or business rule may own it)",
					"sys_id", sysID, "wanted", closeState, "got", clip(st.value))
			}
		}
	}
	return nil
}

// IsOutcomeUnknown reports whether err is a write that may have been applied.
func IsOutcomeUnknown(err error) bool { return errors.Is(err, ErrOutcomeUnknown) }
