// Package duotest is an emulator of the Duo Admin API, as strict as Duo
// where Duo is strict, for tests, the demo and `duosync emulate duo`.
//
// It serves HTTPS on 127.0.0.1 with a CA generated at start (ECDSA P-256;
// CAFile, CAPool) and checks every API request's credentials as
// ../../../shared/reference/duo-admin-api.md §3 describes:
//
//   - Authorization: Basic base64(ikey:hexsig); an unknown ikey is 401 40102.
//   - The date is X-Duo-Date if present, else Date: RFC 1123 with English day
//     and month names, within Options.ClockSkew (default 5m) of Now. Missing
//     is 401 40104 "Missing request timestamp"; unparseable or outside the
//     window is 401 40104 "Invalid request timestamp".
//   - The signature is accepted as v2 HMAC-SHA512, v2 HMAC-SHA1 (legacy) or
//     v5 HMAC-SHA512 (body hash, then the hash of the X-Duo-* headers or of
//     ""), over the Host header with or without its port. Parameters are
//     decoded from the query or a form body ('+' is a space; chunked bodies
//     without Content-Length are fine) and re-canonicalised (%20). A JSON body
//     is covered by its hash only. Anything else is 401 40103.
//
// Errors use Duo's envelope {"stat":"FAIL","code":N,"message":"…",
// "message_detail":"…"} with the codes 40001 (missing parameter), 40002
// (invalid or duplicate), 40102, 40103, 40104, 40401 (unknown id or
// endpoint), 42901 (rate limit) and 50001 (more than 100 groups on a user).
//
// # Endpoints
//
//	GET    /admin/v1/users               limit (default 100, max 300), offset; username (username or alias),
//	                                     email; username_list / user_id_list (JSON arrays, at most 100)
//	POST   /admin/v1/users               username required; alias1..alias4, aliases ("alias1=a&alias2=b",
//	                                     up to 8), realname, email, firstname, lastname, status, notes
//	POST   /admin/v1/users/bulk_create   users: JSON array (1..100) of {username, realname, email, status,
//	                                     notes, firstname, lastname}; all or nothing
//	POST   /admin/v1/users/enroll        username (or alias) of an existing user, email, valid_secs
//	GET    /admin/v1/users/{id}
//	POST   /admin/v1/users/{id}          the create fields, username included
//	DELETE /admin/v1/users/{id}          200 also when already gone
//	GET    /admin/v1/users/{id}/groups   limit (default 100, max 500), offset
//	POST   /admin/v1/users/{id}/groups   group_id; an existing membership is a no-op 200
//	DELETE /admin/v1/users/{id}/groups/{gid}   200 also when not a member
//	GET    /admin/v1/groups              limit (default 100, max 100), offset; group_id_list
//	POST   /admin/v1/groups              name required (duplicate is 40002), desc, status
//	GET    /admin/v2/groups/{id}
//	GET    /admin/v2/groups/{id}/users   limit (default 100, max 500), offset; rows {user_id, username}
//
// Lists answer {"stat":"OK","response":[…],"metadata":{"total_objects":N,
// "next_offset":N,"prev_offset":N}}; next_offset is absent on the last page,
// prev_offset on the first. A limit above the maximum is lowered to it, and
// Options.PageCap lowers the rows of a page further, as Duo may. Users are
// listed in creation order; user objects carry alias1..alias4 (null when
// unset), aliases{}, groups[] (status "Active"), is_enrolled, status,
// created and the empty device lists.
//
// # Emulator choices where Duo's behaviour is unknown
//
//   - Usernames and aliases are matched trimmed and case-folded (exact but
//     trimmed with Options.CaseSensitiveUsernames); they are stored as given.
//   - username_list also matches aliases, like username does.
//   - With a list, limit and offset are ignored and every match is answered
//     once, in list order, with total_objects only.
//   - A duplicate username or alias (among all users' usernames and aliases)
//     is 400 40002 naming the field; bulk_create refuses fields other than
//     the documented ones (aliases included) with 40002.
//   - Enroll of a name that is no user's username or alias is 404 40401; each
//     enroll call appends one entry to the outbox and answers a 20-character
//     code string. It does not change is_enrolled (see Server.SetUserEnrolled).
//   - The API can set status active, bypass or disabled; "locked out" and
//     "pending deletion" only Server.SetUserStatus.
//   - An unknown group_id when adding a membership is 400 40002 (group_id).
//   - A missing or malformed Authorization header is 401 40103 (no 40101
//     was ever seen from Duo). A body that cannot be decoded (not
//     URL-encoded, not a JSON object, over 4 MiB) is 400 40002 before any
//     credential check, since the signature cannot be computed without it.
//
// # Switches that model the real service
//
// Latency is added to every API answer. ReadsPerMinute and WritesPerMinute
// are separate token buckets (GET is a read, anything else a write) that
// hold one minute's budget; a request over budget is 429 42901 and is not
// applied. FaultRate draws, from a generator seeded with FaultSeed, one of
// five faults for a share of requests: "500" (HTTP 500 50001, not applied),
// "503" (an HTML page, not applied), "drop" (connection closed, not
// applied), "lost" (writes only: applied, then the connection is closed with
// no answer, so clients must verify) and "slow" (answered after SlowAnswer).
// The same seed gives the same sequence of faults for the same sequence of
// requests. Inject queues a fault for the next matching requests. Checks run
// in this order: credentials, rate budget, injected fault, random fault.
//
// GenerateUsers and GenerateGroups add deterministic synthetic data (from
// GenerateSeed): about 15% of users not enrolled, 3% disabled, 1% bypass,
// each in 0 to 3 random generated groups. Ids and enrollment codes also come
// from GenerateSeed, so a run is reproducible.
//
// # Inspection endpoints (unsigned, same port)
//
// GET /_emulator/state serves State:
//
//	{"users":[{"user_id","username","aliases":[…],"email","realname","firstname","lastname",
//	           "notes","status","is_enrolled","created","groups":["group name",…]}],
//	 "groups":[{"group_id","name","desc","status","members":N}],
//	 "outbox":[{"username","user_id","email","valid_secs","code","sent_at"}]}
//
// GET /_emulator/stats serves Stats (DELETE resets it, then serves it):
//
//	{"calls":N,"reads":N,"writes":N,
//	 "endpoints":{"GET /admin/v1/users":N,"POST /admin/v1/users/{id}/groups":N,…},
//	 "status":{"200":N,"429":N,"dropped":N,…},
//	 "rate_limited":N,"auth_failures":N,
//	 "faults":{"500":N,"503":N,"drop":N,"lost":N,"slow":N,"injected":N},
//	 "peak_concurrency":N}
//
// Every API request received counts in calls, reads/writes and endpoints,
// whatever its answer.
//
// The secret key is never logged and never part of an error: a failed
// signature check says only which code applies.
package duotest
