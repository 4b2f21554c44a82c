package duotest

import (
	"encoding/json"
	"net/http"
)

// Duo's error codes (reference/duo-admin-api.md §2).
const (
	codeMissingParam = 40001
	codeInvalidParam = 40002
	codeBadIKey      = 40102
	codeBadSignature = 40103
	codeBadDate      = 40104
	codeNotFound     = 40401
	codeRateLimited  = 42901
	codeInternal     = 50001
)

// messages are Duo's messages for its codes, as seen in the wild.
var messages = map[int]string{
	codeMissingParam: "Missing required request parameters",
	codeInvalidParam: "Invalid request parameters",
	codeBadIKey:      "Invalid integration key in request credentials",
	codeBadSignature: "Invalid signature in request credentials",
	codeBadDate:      "Missing request timestamp",
	codeNotFound:     "Resource not found",
	codeRateLimited:  "Too Many Requests",
	codeInternal:     "Unknown internal server error",
}

// apiError is an answer in Duo's error envelope.
type apiError struct {
	status  int
	code    int
	message string
	detail  string
}

// errf builds an apiError with Duo's message for code; detail usually names
// the offending parameter.
func errf(status, code int, detail string) *apiError {
	return &apiError{status: status, code: code, message: messages[code], detail: detail}
}

func missing(param string) *apiError { return errf(http.StatusBadRequest, codeMissingParam, param) }
func invalid(param string) *apiError { return errf(http.StatusBadRequest, codeInvalidParam, param) }
func notFound(what string) *apiError { return errf(http.StatusNotFound, codeNotFound, what) }

// reply is a fully rendered answer. Handlers return one instead of writing,
// so that a "lost answer" fault can apply a write and then send nothing.
type reply struct {
	status int
	body   []byte
	ctype  string
}

func (e *apiError) reply() reply {
	env := struct {
		Stat    string `json:"stat"`
		Code    int    `json:"code"`
		Message string `json:"message"`
		Detail  string `json:"message_detail,omitempty"`
	}{"FAIL", e.code, e.message, e.detail}
	b, _ := json.Marshal(env)
	return reply{status: e.status, body: b, ctype: "application/json"}
}

// metadata is the paging metadata of a list answer.
type metadata struct {
	NextOffset   *int `json:"next_offset,omitempty"`
	PrevOffset   *int `json:"prev_offset,omitempty"`
	TotalObjects int  `json:"total_objects"`
}

func ok(v any) reply {
	b, err := json.Marshal(struct {
		Stat     string `json:"stat"`
		Response any    `json:"response"`
	}{"OK", v})
	if err != nil {
		return errf(http.StatusInternalServerError, codeInternal, "").reply()
	}
	return reply{status: http.StatusOK, body: b, ctype: "application/json"}
}

func okList(v any, m metadata) reply {
	b, err := json.Marshal(struct {
		Stat     string   `json:"stat"`
		Response any      `json:"response"`
		Metadata metadata `json:"metadata"`
	}{"OK", v, m})
	if err != nil {
		return errf(http.StatusInternalServerError, codeInternal, "").reply()
	}
	return reply{status: http.StatusOK, body: b, ctype: "application/json"}
}

// pageMeta builds Duo's paging metadata for rows [offset, offset+n) of total.
func pageMeta(total, offset, limit, n int) metadata {
	m := metadata{TotalObjects: total}
	if next := offset + n; n > 0 && next < total {
		m.NextOffset = &next
	}
	if offset > 0 {
		prev := max(0, offset-limit)
		m.PrevOffset = &prev
	}
	return m
}
