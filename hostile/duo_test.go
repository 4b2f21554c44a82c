package hostile

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/duosync/duosync/duo"
)

const duoSKey = "HOSTILEskeyHOSTILEskeyHOSTILEskey0123456"

// duoAnswer answers one Admin API GET; offset is the request's offset.
type duoAnswer func(w http.ResponseWriter, offset int)

// hostileDuo serves answer over TLS and returns a client for it, with fast
// retries (the default backoff would make the time bound meaningless), and
// the number of requests served.
func hostileDuo(dir string, answer duoAnswer) (*duo.Client, *atomic.Int64, func()) {
	var calls atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodGet {
			http.Error(w, "a read-only test got a write", http.StatusTeapot)
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		answer(w, off)
	}))
	// Hanging up on a hostile answer is the point: keep the server's
	// complaints about it out of the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		panic(err)
	}
	c, err := duo.New(duo.Config{Host: strings.TrimPrefix(srv.URL, "https://"), IKey: "DIHOSTILE00000000000", SKey: duoSKey,
		CAFile: ca, Timeout: 5 * time.Second, MaxAttempts: 2, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	return c, &calls, func() { c.CloseIdleConnections(); srv.CloseClientConnections(); srv.Close() }
}

func userJSON(i int) string {
	return fmt.Sprintf(`{"user_id":"DU%018d","username":"user%d@example.com","email":"user%d@example.com","status":"active","is_enrolled":false,"groups":[]}`, i, i, i)
}

// usersPage writes a page of users [from, from+n) with the given metadata
// (nil values are left out).
func usersPage(w http.ResponseWriter, from, n int, next, total *int) {
	var b strings.Builder
	b.WriteString(`{"stat":"OK","response":[`)
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteByte(',')
		}
		b.WriteString(userJSON(i))
	}
	b.WriteString(`],"metadata":{`)
	var meta []string
	if next != nil {
		meta = append(meta, fmt.Sprintf(`"next_offset":%d`, *next))
	}
	if total != nil {
		meta = append(meta, fmt.Sprintf(`"total_objects":%d`, *total))
	}
	b.WriteString(strings.Join(meta, ",") + "}}")
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, b.String())
}

func ptr(n int) *int { return &n }

// readFails checks that ListUsers (and the planner's UsersFor) fail with an
// error naming the endpoint and holding every part, return no users, and
// never show the secret key.
func readFails(dir string, answer duoAnswer, parts ...string) error {
	return readFailsWith(dir, true, answer, parts...)
}

// readDeadline stops a read that never ends well before the harness's time
// bound, so that a hanging case does not keep spinning after it failed. The
// harness shortens it for a known finding that hangs, to keep the suite fast.
var readDeadline = defaultReadDeadline

const defaultReadDeadline = 3 * time.Second * slowdown

// readFailsWith checks ListUsers and, when alsoUsersFor, UsersFor with so
// many names that it pages rather than looks them up.
func readFailsWith(dir string, alsoUsersFor bool, answer duoAnswer, parts ...string) error {
	c, calls, stop := hostileDuo(dir, answer)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), readDeadline)
	defer cancel()
	users, _, err := c.ListUsers(ctx)
	if err == nil || users != nil {
		return fmt.Errorf("ListUsers: %d users and error %v after %d calls, want no users and an error", len(users), err, calls.Load())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("ListUsers only stopped at the deadline, after %d calls: %v", calls.Load(), err)
	}
	if err := firstErr(wantErr(err, append([]string{"/admin/v1/users"}, parts...)...), wantNoSecret(err.Error(), duoSKey)); err != nil {
		return err
	}
	if !alsoUsersFor {
		return nil
	}
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("user%d@example.com", i)
	}
	users, _, err = c.UsersFor(ctx, names)
	if err == nil || users != nil || ctx.Err() != nil {
		return fmt.Errorf("UsersFor: %d users and error %v, want no users and an error", len(users), err)
	}
	return nil
}

func duoCases() []hostileCase {
	return []hostileCase{
		{area: "duo", name: "huge-body",
			what: "a 100 MB users page (streamed)",
			want: "the read fails at the body limit; memory stays bounded",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					bw := bufio.NewWriterSize(w, 1<<20)
					bw.WriteString(`{"stat":"OK","response":[`)
					u := userJSON(1) + ","
					for n := 0; n < 100<<20; n += len(u) {
						if _, err := bw.WriteString(u); err != nil {
							return // the client hung up
						}
					}
					bw.WriteString(userJSON(2) + `]}`)
					bw.Flush()
				}, "larger than", "16 MiB")
			}},
		{area: "duo", name: "deep-nesting",
			what: "a users page whose response is nested 100,000 arrays deep",
			want: "the read fails with a decoding error, no stack overflow",
			run: func(dir string) error {
				body := `{"stat":"OK","response":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
				return readFails(dir, func(w http.ResponseWriter, _ int) { io.WriteString(w, body) }, "unreadable")
			}},
		{area: "duo", name: "deep-nesting-in-user",
			what: "a user object whose notes field is an object nested 10,000 deep",
			want: "the read fails with a decoding error",
			run: func(dir string) error {
				body := `{"stat":"OK","response":[{"user_id":"DU1","username":"a","notes":` + strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000) + `}]}`
				return readFails(dir, func(w http.ResponseWriter, _ int) { io.WriteString(w, body) }, "unreadable")
			}},
		{area: "duo", name: "next-offset-backwards",
			what: "a users page (no total_objects) whose next_offset points back to 0",
			want: "the read fails saying next_offset does not advance",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) {
					next := off + 300
					if off == 300 {
						next = 0
					}
					usersPage(w, off, 300, ptr(next), nil)
				}, "next_offset", "does not advance")
			}},
		{area: "duo", name: "next-offset-backwards-with-total",
			what: "pages with total_objects 900 whose second page sends next_offset back to 0",
			want: "the read fails, never loops",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) {
					next := off + 300
					if off == 300 {
						next = 0
					}
					usersPage(w, off, 300, ptr(next), ptr(900))
				}, "next_offset")
			}},
		{area: "duo", name: "never-ends-empty",
			what: "pages without total_objects that are empty and always carry a next_offset",
			want: "the read fails (an empty page that says there is more), it does not spin forever",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) {
					if off == 0 {
						usersPage(w, 0, 300, ptr(300), nil)
						return
					}
					usersPage(w, off, 0, ptr(off+300), nil)
				}, "empty page")
			}},
		{area: "duo", name: "never-ends-full",
			what: "pages without total_objects, each of 300 new users, always with a next_offset",
			want: "the read fails at a plausible size, before memory runs out",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) { usersPage(w, off, 300, ptr(off+300), nil) },
					"total_objects", "25000 rows")
			}},
		{area: "duo", name: "total-objects-too-big",
			what: "total_objects says 1,000 but the pages end after 300 users",
			want: "the read fails (rows missing), after a bounded number of re-reads",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) {
					if off == 0 {
						usersPage(w, 0, 300, ptr(300), ptr(1000))
						return
					}
					usersPage(w, off, 0, nil, ptr(1000))
				})
			}},
		{area: "duo", name: "total-objects-absurd",
			what: "total_objects is 10^15 on the first page",
			want: "the read fails as implausible, without planning 10^12 page reads",
			run: func(dir string) error {
				// UsersFor rightly looks the names up instead of paging.
				return readFailsWith(dir, false, func(w http.ResponseWriter, off int) { usersPage(w, off, 300, ptr(off+300), ptr(1_000_000_000_000_000)) }, "implausible")
			}},
		{area: "duo", name: "total-objects-negative",
			what: "total_objects is -5 with a next_offset",
			want: "the read fails or reads by next_offset, never trusts the count",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, off int) {
					if off >= 600 {
						io.WriteString(w, `{"stat":"FAIL","code":50000,"message":"stop here"}`)
						return
					}
					usersPage(w, off, 300, ptr(off+300), ptr(-5))
				})
			}},
		{area: "duo", name: "html-200",
			what: "a 200 answer whose body is a proxy's HTML login page",
			want: "the read fails: HTTP 200 with an unreadable body",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					w.Header().Set("Content-Type", "text/html")
					io.WriteString(w, "<html><body><h1>Proxy authentication required</h1></body></html>")
				}, "200", "unreadable")
			}},
		{area: "duo", name: "stat-fail-200",
			what: `a 200 answer with {"stat":"FAIL"}`,
			want: "the read fails with Duo's message",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					io.WriteString(w, `{"stat":"FAIL","code":40002,"message":"Invalid request parameters","message_detail":"limit"}`)
				}, "Invalid request parameters")
			}},
		{area: "duo", name: "truncated-json",
			what: "a users page cut off mid-object",
			want: "the read fails with a decoding error",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					io.WriteString(w, `{"stat":"OK","response":[`+userJSON(1)+`,{"user_id":"DU2","usern`)
				}, "unreadable")
			}},
		{area: "duo", name: "wrong-types",
			what: `a user object with "is_enrolled":"yes", "groups":"MFA Users" and a numeric user_id`,
			want: "the read fails with a decoding error naming the field",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					io.WriteString(w, `{"stat":"OK","response":[{"user_id":12,"username":"a","is_enrolled":"yes","groups":"MFA Users"}]}`)
				}, "user_id")
			}},
		{area: "duo", name: "response-null",
			what: `{"stat":"OK","response":null}`,
			want: "the read fails: never taken as an empty account",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) { io.WriteString(w, `{"stat":"OK","response":null}`) }, "response")
			}},
		{area: "duo", name: "user-without-id",
			what: "a user object with an empty user_id",
			want: "the read fails naming the row",
			run: func(dir string) error {
				return readFails(dir, func(w http.ResponseWriter, _ int) {
					io.WriteString(w, `{"stat":"OK","response":[`+userJSON(1)+`,{"user_id":"","username":"ghost"}]}`)
				}, "row 1")
			}},
	}
}
