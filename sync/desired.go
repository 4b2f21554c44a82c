package sync

import (
	"fmt"
	"hash/maphash"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/duosync/duosync/source"
)

// Skip reasons: requests that are not errors, only not for us.
const (
	SkipNotApproved       = "not_approved"
	SkipClosedIncomplete  = "closed_incomplete"
	SkipClosedSkipped     = "closed_skipped"
	SkipOtherCatalogItem  = "other_catalog_item"
	SkipRequesterInactive = "requester_inactive"
	SkipDuplicate         = "duplicate"
)

// Reject reasons found by the engine (sources add their own).
const (
	RejectMissingUsername = "missing_username"
	RejectInvalidUsername = "invalid_username"
	RejectMissingEmail    = "missing_email"
	RejectInvalidEmail    = "invalid_email"
	RejectInvalidAlias    = "invalid_alias"
	RejectInvalidGroup    = "invalid_group"
	RejectConflict        = "conflict"
)

// Normalize is the identity key of a Duo username or alias: trimmed and
// case-folded. Duo documents no normalisation, so duosync matches loosely
// and never creates a second user differing only in case.
func Normalize(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

// Desired is the state the approved requests ask for, plus everything that
// was set aside on the way (skipped, invalid, conflicting requests).
type Desired struct {
	Users     []DesiredUser            `json:"users"` // sorted by Key
	Conflicts []Conflict               `json:"conflicts"`
	Invalid   []source.Problem         `json:"invalid"`
	Skipped   []SkippedRequest         `json:"skipped"`
	Counts    Counts                   `json:"counts"`
	Warnings  []string                 `json:"warnings"`
	Requests  map[string]source.Origin `json:"-"` // RITM → where it came from, for requests not skipped
}

// DesiredUser is one Duo user the requests ask for, merged over all of them.
type DesiredUser struct {
	Key         string       `json:"key"` // Normalize(Username)
	Username    string       `json:"username"`
	Email       string       `json:"email"`
	Realname    string       `json:"realname,omitempty"`
	Firstname   string       `json:"firstname,omitempty"`
	Lastname    string       `json:"lastname,omitempty"`
	Aliases     []string     `json:"aliases,omitempty"` // non-empty alias1..alias4, in order
	Notes       string       `json:"notes,omitempty"`
	Memberships []Membership `json:"memberships,omitempty"` // sorted by group name
	Requests    []string     `json:"requests"`              // RITM numbers, in source order
}

// Membership is one group a user should be in, and the requests asking.
type Membership struct {
	Group    string   `json:"group"`
	Requests []string `json:"requests"`
}

// Conflict is a user whose requests disagree on an attribute; none of them
// is applied.
type Conflict struct {
	Username string   `json:"username"`
	Field    string   `json:"field"`
	Values   []string `json:"values"`
	Requests []string `json:"requests"`
	Detail   string   `json:"detail"`
}

// SkippedRequest is a request that is deliberately not provisioned.
type SkippedRequest struct {
	Request string `json:"request"` // RITM number
	Reason  string `json:"reason"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// Counts are the figures of `validate --format json` and of the report.
type Counts struct {
	Rows        int            `json:"rows"`        // records read, valid or not
	Provision   int            `json:"provision"`   // requests to provision
	Skip        map[string]int `json:"skip"`        // by reason
	Reject      map[string]int `json:"reject"`      // by reason, conflicts included
	Users       int            `json:"users"`       // distinct usernames to provision
	Memberships int            `json:"memberships"` // distinct (username, group) pairs
}

// Invalid is the number of rows rejected for any reason.
func (c Counts) Invalid() int {
	n := 0
	for _, v := range c.Reject {
		n += v
	}
	return n
}

// Builder builds a Desired state from a stream of requests, so that a
// million-row export never needs to sit in memory as requests.
type Builder struct {
	m       *compiledMapping
	filter  Filter
	users   map[string]*userAcc
	order   []string            // user keys in first-seen order
	seen    map[uint64]struct{} // hashes of the records read
	checked map[string]bool     // files whose columns were checked
	seed    maphash.Seed
	d       Desired
}

// userAcc accumulates the requests for one user.
type userAcc struct {
	user      DesiredUser
	groups    map[string]*Membership // by normalised group name
	conflicts []Conflict
	clashes   []string // aliases shared with other users
}

// NewBuilder checks the mapping and returns an empty builder.
func NewBuilder(m Mapping, f Filter) (*Builder, error) {
	cm, err := m.compile()
	if err != nil {
		return nil, err
	}
	return &Builder{
		m:       cm,
		filter:  f,
		users:   map[string]*userAcc{},
		seen:    map[uint64]struct{}{},
		checked: map[string]bool{},
		seed:    maphash.MakeSeed(),
		d: Desired{
			Counts:   Counts{Skip: map[string]int{}, Reject: map[string]int{}},
			Requests: map[string]source.Origin{},
		},
	}, nil
}

// BuildDesired is the one-shot form of Builder.
func BuildDesired(reqs []source.Request, problems []source.Problem, m Mapping, f Filter) (Desired, error) {
	b, err := NewBuilder(m, f)
	if err != nil {
		return Desired{}, err
	}
	for _, p := range problems {
		b.AddProblem(p)
	}
	for _, r := range reqs {
		if err := b.Add(r); err != nil {
			return Desired{}, err
		}
	}
	return b.Finish(), nil
}

// AddProblem counts a row the source could not read.
func (b *Builder) AddProblem(p source.Problem) {
	b.d.Counts.Rows++
	b.reject(p)
}

func (b *Builder) reject(p source.Problem) {
	if p.Reason == "" {
		p.Reason = "invalid"
	}
	b.d.Invalid = append(b.d.Invalid, p)
	b.d.Counts.Reject[p.Reason]++
}

func (b *Builder) skip(r source.Request, reason string) {
	b.d.Counts.Skip[reason]++
	b.d.Skipped = append(b.d.Skipped, SkippedRequest{Request: r.Number(), Reason: reason, File: r.Origin.File, Line: r.Origin.Line})
}

// Add takes one request. Its only error is a mapping that names a column the
// source does not have (a configuration error, checked once per file); a bad
// row is recorded as invalid and never stops the others.
func (b *Builder) Add(r source.Request) error {
	if !b.checked[r.Origin.File] {
		if err := b.m.checkColumns(r); err != nil {
			return err
		}
		b.checked[r.Origin.File] = true
	}
	b.d.Counts.Rows++
	if reason := b.skipReason(r); reason != "" {
		b.skip(r, reason)
		return nil
	}
	if b.duplicate(r) {
		b.skip(r, SkipDuplicate)
		return nil
	}
	if r.Number() != "" {
		b.d.Requests[r.Number()] = r.Origin
	}
	u, groups, prob := b.mapRequest(r)
	if prob != nil {
		b.reject(*prob)
		return nil
	}
	b.merge(u, groups, r.Number())
	return nil
}

// skipReason applies the approval, state, catalog item and active filters.
// Display values ("Approved", "Closed Incomplete") and raw values
// ("approved", "4") both work.
func (b *Builder) skipReason(r source.Request) string {
	if !strings.EqualFold(strings.TrimSpace(r.Get("approval")), "approved") {
		return SkipNotApproved
	}
	switch strings.ToLower(strings.TrimSpace(r.Get("state"))) {
	case "4", "closed incomplete", "closed_incomplete":
		return SkipClosedIncomplete
	case "7", "closed skipped", "closed_skipped":
		return SkipClosedSkipped
	}
	if !b.filter.allows(r.Get("cat_item")) {
		return SkipOtherCatalogItem
	}
	switch strings.ToLower(strings.TrimSpace(r.Get("requested_for.active"))) {
	case "false", "0", "no":
		return SkipRequesterInactive
	}
	return ""
}

// duplicate reports a record identical to an earlier one (overlapping
// exports). Records are compared by a 64-bit hash of all their fields: a
// false match among a million rows has a chance of about 1 in 30 million,
// and keeping a hash instead of the record keeps memory flat.
func (b *Builder) duplicate(r source.Request) bool {
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var h maphash.Hash
	h.SetSeed(b.seed)
	for _, k := range keys {
		h.WriteString(k)
		h.WriteByte(0)
		h.WriteString(r.Fields[k])
		h.WriteByte(0)
	}
	sum := h.Sum64()
	if _, ok := b.seen[sum]; ok {
		return true
	}
	b.seen[sum] = struct{}{}
	return false
}

// mapRequest renders the mapping for one request and validates the result.
func (b *Builder) mapRequest(r source.Request) (DesiredUser, []string, *source.Problem) {
	bad := func(t template, reason, detail string) (DesiredUser, []string, *source.Problem) {
		col := ""
		if fs := t.fields(); len(fs) > 0 {
			col = fs[0]
		}
		return DesiredUser{}, nil, &source.Problem{File: r.Origin.File, Line: r.Origin.Line, Column: col, Reason: reason,
			Detail: requestLabel(r) + detail}
	}
	u := DesiredUser{
		Username:  b.m.username.render(r),
		Email:     b.m.email.render(r),
		Realname:  b.m.realname.render(r),
		Firstname: b.m.firstname.render(r),
		Lastname:  b.m.lastname.render(r),
		Notes:     b.m.notes.render(r),
	}
	switch {
	case u.Username == "":
		return bad(b.m.username, RejectMissingUsername, fmt.Sprintf("no username: %s is empty", b.m.username.text))
	case hasControl(u.Username):
		return bad(b.m.username, RejectInvalidUsername, fmt.Sprintf("username %q contains a control character", u.Username))
	case strings.ContainsAny(u.Username, " \t"):
		return bad(b.m.username, RejectInvalidUsername, fmt.Sprintf("username %q contains a space", u.Username))
	case u.Email == "":
		return bad(b.m.email, RejectMissingEmail, fmt.Sprintf("no email address for %s: %s is empty", u.Username, b.m.email.text))
	}
	if err := checkEmail(u.Email); err != nil {
		return bad(b.m.email, RejectInvalidEmail, fmt.Sprintf("invalid email %q: %v", u.Email, err))
	}
	for i, t := range b.m.aliases {
		a := t.render(r)
		if a == "" {
			continue
		}
		if hasControl(a) || strings.ContainsAny(a, " \t") {
			return bad(t, RejectInvalidAlias, fmt.Sprintf("alias%d %q contains a space or control character", i+1, a))
		}
		if Normalize(a) == Normalize(u.Username) || slices.ContainsFunc(u.Aliases, func(x string) bool { return Normalize(x) == Normalize(a) }) {
			continue // Duo would reject an alias equal to the username or another alias
		}
		u.Aliases = append(u.Aliases, a)
	}
	for _, f := range []*string{&u.Realname, &u.Firstname, &u.Lastname, &u.Notes} {
		*f = stripControl(*f)
	}
	groups := b.m.groups(r)
	for _, g := range groups {
		if hasControl(g) {
			col := b.m.groupsColumn
			return DesiredUser{}, nil, &source.Problem{File: r.Origin.File, Line: r.Origin.Line, Column: col, Reason: RejectInvalidGroup,
				Detail: requestLabel(r) + fmt.Sprintf("group name %q contains a control character", g)}
		}
	}
	u.Key = Normalize(u.Username)
	return u, groups, nil
}

func requestLabel(r source.Request) string {
	if n := r.Number(); n != "" {
		return n + ": "
	}
	return ""
}

// checkEmail accepts a bare address (no display name) with a dotted domain.
func checkEmail(s string) error {
	if hasControl(s) || strings.ContainsAny(s, " \t<>,;") {
		return fmt.Errorf("contains a space, control character or one of <>,;")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return fmt.Errorf("want exactly one @ between a name and a domain")
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return fmt.Errorf("domain %q is not a dotted host name", domain)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("not an RFC 5322 address")
	}
	return nil
}

func hasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, isUnsafe)
}

// isUnsafe reports control characters and the bidirectional formatting
// characters, which make a name display as something else ("jane\u202emoc.x"
// shows reversed in the Duo admin panel). Other format characters (ZWNJ,
// ZWJ) are left alone: real names use them.
func isUnsafe(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f', r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

func stripControl(s string) string {
	if !hasControl(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isUnsafe(r) {
			return ' '
		}
		return r
	}, s))
}

// merge folds one valid request into its user. Attributes that two requests
// give different non-empty values make the user a conflict.
func (b *Builder) merge(u DesiredUser, groups []string, ritm string) {
	acc, ok := b.users[u.Key]
	if !ok {
		u.Requests = []string{ritm}
		acc = &userAcc{user: u, groups: map[string]*Membership{}}
		b.users[u.Key] = acc
		b.order = append(b.order, u.Key)
	} else {
		have := &acc.user
		have.Requests = append(have.Requests, ritm)
		acc.mergeField("email", &have.Email, u.Email, strings.EqualFold)
		acc.mergeField("realname", &have.Realname, u.Realname, stringsEqual)
		acc.mergeField("firstname", &have.Firstname, u.Firstname, stringsEqual)
		acc.mergeField("lastname", &have.Lastname, u.Lastname, stringsEqual)
		hv, wv := strings.Join(have.Aliases, ", "), strings.Join(u.Aliases, ", ")
		if acc.mergeField("aliases", &hv, wv, strings.EqualFold) {
			have.Aliases = u.Aliases
		}
		// Notes list every request served, for whoever reads the Duo user.
		if u.Notes != "" && !slices.Contains(strings.Split(have.Notes, ", "), u.Notes) {
			if have.Notes == "" {
				have.Notes = u.Notes
			} else {
				have.Notes += ", " + u.Notes
			}
		}
	}
	for _, g := range groups {
		k := strings.ToLower(g)
		m, ok := acc.groups[k]
		if !ok {
			m = &Membership{Group: g}
			acc.groups[k] = m
		}
		if ritm == "" || !slices.Contains(m.Requests, ritm) {
			m.Requests = append(m.Requests, ritm)
		}
	}
}

func stringsEqual(a, b string) bool { return a == b }

// mergeField folds a request's value into the user's: an empty side takes
// the other, different non-empty values are a conflict. It reports whether
// the user's value was filled in.
func (a *userAcc) mergeField(field string, have *string, want string, equal func(a, b string) bool) bool {
	switch {
	case want == "" || equal(*have, want):
		return false
	case *have == "":
		*have = want
		return true
	}
	for i := range a.conflicts {
		if a.conflicts[i].Field == field {
			if !slices.Contains(a.conflicts[i].Values, want) {
				a.conflicts[i].Values = append(a.conflicts[i].Values, want)
			}
			return false
		}
	}
	a.conflicts = append(a.conflicts, Conflict{Field: field, Values: []string{*have, want}})
	return false
}

// Finish returns the desired state; the builder must not be used after.
func (b *Builder) Finish() Desired {
	d := b.d
	slices.Sort(b.order)
	b.aliasClashes()
	for _, key := range b.order {
		acc := b.users[key]
		u := acc.user
		if len(acc.conflicts) > 0 || len(acc.clashes) > 0 {
			// One conflict per user, naming every field in dispute.
			c := Conflict{Username: u.Username, Requests: u.Requests}
			var fields, parts []string
			for _, f := range acc.conflicts {
				fields = append(fields, f.Field)
				parts = append(parts, f.Field+" ("+quoteJoin(f.Values)+")")
				c.Values = append(c.Values, f.Field+": "+quoteJoin(f.Values))
			}
			var why []string
			if len(parts) > 0 {
				why = append(why, "they disagree on "+strings.Join(parts, ", "))
			}
			if len(acc.clashes) > 0 {
				fields = append(fields, "aliases")
				why = append(why, acc.clashes...)
				c.Values = append(c.Values, acc.clashes...)
			}
			c.Field = strings.Join(slices.Compact(fields), ", ")
			c.Detail = fmt.Sprintf("requests for %s are not applied: %s", u.Username, strings.Join(why, "; "))
			d.Conflicts = append(d.Conflicts, c)
			d.Counts.Reject[RejectConflict] += len(u.Requests)
			continue
		}
		for _, m := range acc.groups {
			u.Memberships = append(u.Memberships, *m)
		}
		slices.SortFunc(u.Memberships, func(a, b Membership) int { return strings.Compare(strings.ToLower(a.Group), strings.ToLower(b.Group)) })
		d.Users = append(d.Users, u)
		d.Counts.Provision += len(u.Requests)
		d.Counts.Memberships += len(u.Memberships)
	}
	d.Counts.Users = len(d.Users)
	// An export cut off at ServiceNow's row limit is the CSV reader's to
	// warn about (source.ReadCSV): it counts the file's data rows.
	if d.Counts.Rows == 0 {
		d.Warnings = append(d.Warnings, "the source holds no requests: there is nothing to plan")
	}
	b.users = nil
	return d
}

// aliasClashes makes a conflict of two users where an alias of one is the
// username or an alias of the other: Duo keeps aliases unique, so applying
// either could attach one person's requests to the other.
func (b *Builder) aliasClashes() {
	owner := make(map[string]string, len(b.order))
	for _, key := range b.order {
		owner[key] = key
	}
	for _, key := range b.order {
		acc := b.users[key]
		for _, a := range acc.user.Aliases {
			n := Normalize(a)
			o, ok := owner[n]
			if !ok {
				owner[n] = key
				continue
			}
			if o == key {
				continue
			}
			other := b.users[o]
			acc.clashes = append(acc.clashes, fmt.Sprintf("alias %q is also requested for %s", a, other.user.Username))
			other.clashes = append(other.clashes, fmt.Sprintf("alias %q is also requested for %s", a, acc.user.Username))
		}
	}
}

func nameOr(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

func quoteJoin(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, " vs ")
}

// Usernames returns the normalised usernames of the desired users: what
// DuoReader.UsersFor needs.
func Usernames(d Desired) []string {
	out := make([]string, len(d.Users))
	for i, u := range d.Users {
		out[i] = u.Key
	}
	return out
}

// GroupNames returns the distinct group names the desired users ask for, sorted.
func GroupNames(d Desired) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range d.Users {
		for _, m := range u.Memberships {
			if k := strings.ToLower(m.Group); !seen[k] {
				seen[k] = true
				out = append(out, m.Group)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}
