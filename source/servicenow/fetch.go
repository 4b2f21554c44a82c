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

// list pages through a table by offset and calls fn per page. Paging ends
// when the offset reaches X-Total-Count, not at a short page (sysparm_limit
// is applied before ACLs). When the Link header's next offset is smaller
// than offset+limit (an instance capping the page size), it is followed.
func (c *Client) list(ctx context.Context, table, query string, fields []string, mode string, excl bool,
	fn func(recs []map[string]string, offset int) error) (total, pages int, err error) {
	limit := c.cfg.PageSize
	total = -1
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
		for i, r := range recs {
			if r["sys_id"] == "" {
				return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: record %d has no sys_id (is it readable by the integration user?)", table, offset, i)
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
		next := offset + limit
		if n := linkOffset(links["next"]); n > offset && n < next {
			next = n
		}
		switch {
		case hasCount:
			total = count
			if next >= total {
				return total, pages, nil
			}
		case linkHeader != "":
			if _, more := links["next"]; !more {
				return max(total, offset+len(recs)), pages, nil
			}
		default:
			return total, pages, fmt.Errorf("ServiceNow GET %s at offset %d: no X-Total-Count and no Link header, so the read cannot be known complete", table, offset)
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
