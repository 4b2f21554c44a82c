package servicenow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrOutcomeUnknown marks a write whose request may have reached ServiceNow
// without an answer coming back (a dropped connection, a timeout, a 5xx). It
// is never retried: a work note must not be added twice.
var ErrOutcomeUnknown = errors.New("outcome unknown: the request may have been applied")

// APIError is an error answer from ServiceNow, decoded from its
// {"error":{"message","detail"},"status":"failure"} body (or the OAuth
// endpoint's {"error","error_description"}).
type APIError struct {
	Method  string // GET, PATCH, POST
	Target  string // the table (sc_req_item, sc_req_item/<sys_id>) or oauth_token.do
	Status  int
	Message string
	Detail  string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("ServiceNow %s %s: %d", e.Method, e.Target, e.Status)
	if e.Message != "" {
		s += " " + e.Message
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// maxErrorText bounds what an error body contributes to a message.
const maxErrorText = 300

// decodeAPIError reads an error body. Anything that is not ServiceNow's
// JSON shape (an HTML page from a proxy, garbage) is summarised, not quoted.
func decodeAPIError(method, target string, status int, contentType string, body []byte) *APIError {
	e := &APIError{Method: method, Target: target, Status: status}
	var sn struct {
		Error json.RawMessage `json:"error"`
		// The OAuth endpoint's shape.
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &sn) == nil && len(sn.Error) > 0 {
		var obj struct {
			Message json.RawMessage `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		}
		var code string
		switch {
		case json.Unmarshal(sn.Error, &obj) == nil && (obj.Message != nil || obj.Detail != nil):
			e.Message, e.Detail = jsonText(obj.Message), jsonText(obj.Detail)
			return e
		case json.Unmarshal(sn.Error, &code) == nil:
			e.Message, e.Detail = clip(code), clip(sn.ErrorDescription)
			return e
		}
	}
	switch {
	case looksLikeHTML(contentType, body):
		e.Message = "an HTML page instead of a JSON error (" + htmlTitle(body) + ")"
	case len(body) == 0:
		e.Message = statusText(status)
	default:
		e.Message = statusText(status) + " (unrecognised error body)"
	}
	return e
}

func statusText(status int) string {
	switch status {
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 429:
		return "Too Many Requests"
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	return "HTTP error"
}

// jsonText turns a JSON string (or null, or any other value) into bounded text.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clip(s)
	}
	return clip(string(raw))
}

// clip bounds a text from a server and keeps it on one line.
func clip(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func looksLikeHTML(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.Contains(ct, "html") {
		return true
	}
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") ||
		strings.HasPrefix(head, "<?xml") || strings.HasPrefix(head, "<")
}

// htmlTitle names an HTML page by its <title>, for a message such as
// "an HTML page (title "Log in | ServiceNow")".
func htmlTitle(body []byte) string {
	s := string(body[:min(len(body), 64<<10)])
	lower := strings.ToLower(s)
	i := strings.Index(lower, "<title")
	if i < 0 {
		return "no title"
	}
	j := strings.Index(lower[i:], ">")
	if j < 0 {
		return "no title"
	}
	start := i + j + 1
	end := strings.Index(lower[start:], "</title")
	if end < 0 {
		return "no title"
	}
	return fmt.Sprintf("title %q", clip(s[start:start+end]))
}
