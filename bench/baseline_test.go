package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/admin"

	"github.com/duosync/duosync/duo/duotest"
)

// baselineRun is what the naive baseline did, measured.
type baselineRun struct {
	ReadWall, WriteWall   time.Duration // WriteWall for the share of requests run
	ReadStats, WriteStats duotest.Stats
	Mem                   memPeak
	UsersRead             int
	Requests              int // requests it ran (a share of the export)
	Share                 int // the export's requests = Requests × Share
	Failed                int // calls answered with something other than "stat":"OK"
}

// runBaseline is the integration duosync replaces, written like the
// original per-request scripts: duo_api_golang's admin.Client.GetUsers()
// with its default paging (limit=100, one page at a time) to learn which
// users exist, GetGroups() for the group ids, then one call at a time and
// no diff beyond "does the user exist": a missing user is created and sent
// an enrollment email, and every request's group is added, whether or not
// the user is already in it.
//
// It runs the requests of every share-th row of each kind (a tenth by
// default); the caller scales its writes linearly.
func runBaseline(ctx context.Context, e *emulator, share int) (baselineRun, error) {
	out := baselineRun{Share: share}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return out, err
	}
	api := duoapi.NewDuoApi(e.IKey, e.SKey, e.Host, "naive-baseline", duoapi.SetTimeout(30*time.Second),
		duoapi.SetTransport(func(t *http.Transport) {
			// duo_api_golang pins Duo's CAs; the emulator's must be added.
			t.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem)
		}))
	lib := admin.New(*api)
	if err := e.ResetStats(ctx); err != nil {
		return out, err
	}

	mem := startMemSampler(10 * time.Millisecond)
	start := time.Now()
	users, err := lib.GetUsers()
	if err == nil && users.Stat != "OK" {
		err = fmt.Errorf("stat %s", users.Stat)
	}
	if err != nil {
		mem.Stop()
		return out, fmt.Errorf("baseline: get users: %w", err)
	}
	groups, err := lib.GetGroups()
	if err == nil && groups.Stat != "OK" {
		err = fmt.Errorf("stat %s", groups.Stat)
	}
	if err != nil {
		mem.Stop()
		return out, fmt.Errorf("baseline: get groups: %w", err)
	}
	exists := make(map[string]string, len(users.Response))
	for _, u := range users.Response {
		exists[strings.ToLower(u.Username)] = u.UserID
	}
	groupID := map[string]string{}
	for _, g := range groups.Response {
		groupID[g.Name] = g.GroupID
	}
	out.ReadWall = time.Since(start)
	out.UsersRead = len(users.Response)
	if out.ReadStats, err = e.Stats(ctx); err != nil {
		mem.Stop()
		return out, err
	}
	if err := e.ResetStats(ctx); err != nil {
		mem.Stop()
		return out, err
	}

	start = time.Now()
	seen := map[string]int{}
	for _, r := range e.Scenario.Requests {
		if seen[r.Kind]++; (seen[r.Kind]-1)%share != 0 {
			continue
		}
		out.Requests++
		id, ok := exists[strings.ToLower(r.Username)]
		if !ok {
			created, err := lib.CreateUser(url.Values{
				"username": {r.Username}, "email": {r.Username}, "realname": {r.FirstName + " " + r.LastName},
				"firstname": {r.FirstName}, "lastname": {r.LastName}, "alias1": {r.UserName},
				"alias2": {`GLOBAL\` + r.UserName}, "notes": {r.Number},
			})
			if err != nil || created.Stat != "OK" {
				out.Failed++
				continue
			}
			id = created.Response.UserID
			exists[strings.ToLower(r.Username)] = id
			// admin has no enroll method: the scripts sign the call themselves.
			_, body, err := api.SignedCall(http.MethodPost, "/admin/v1/users/enroll",
				url.Values{"username": {r.Username}, "email": {r.Username}, "valid_secs": {"86400"}}, duoapi.UseTimeout)
			if !statOK(body, err) {
				out.Failed++
			}
		}
		res, err := lib.AssociateGroupWithUser(id, groupID[r.Group])
		if err != nil || res.Stat != "OK" {
			out.Failed++
		}
	}
	out.WriteWall = time.Since(start)
	out.Mem = mem.Stop()
	if out.WriteStats, err = e.Stats(ctx); err != nil {
		return out, err
	}
	return out, nil
}

func statOK(body []byte, err error) bool {
	var st duoapi.StatResult
	return err == nil && json.Unmarshal(body, &st) == nil && st.Stat == "OK"
}
