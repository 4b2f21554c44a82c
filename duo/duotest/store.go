package duotest

import (
	"math/rand/v2"
	"slices"
	"strings"
)

// maxAliases is how many alias positions Duo keeps (alias1..alias8; the user
// object shows alias1..alias4 as fields and all of them in aliases{}).
const maxAliases = 8

// maxGroupsPerUser is Duo's one-to-many limit; exceeding it is HTTP 500 50001.
const maxGroupsPerUser = 100

// user is the emulator's record of a Duo user.
type user struct {
	id        string
	username  string
	aliases   [maxAliases]string // by position; "" = unset
	email     string
	realname  string
	firstname string
	lastname  string
	notes     string
	status    string // lower case, as Duo shows it: active, bypass, disabled, "locked out", "pending deletion"
	enrolled  bool
	created   int64
	groups    []*group // in the order they were added
}

// names returns the user's username and set aliases.
func (u *user) names() []string {
	out := []string{u.username}
	for _, a := range u.aliases {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (u *user) inGroup(g *group) bool { return slices.Contains(u.groups, g) }

// group is the emulator's record of a Duo group.
type group struct {
	id      string
	name    string
	desc    string
	status  string  // lower case: active, bypass, disabled
	members []*user // in the order they were added
}

// store holds the account's users and groups with the indexes that keep
// every lookup O(1) and every page O(page size) at 100,000 users. It is not
// safe for concurrent use: the Server guards it with one mutex.
type store struct {
	norm func(string) string

	users  []*user          // Duo's order: creation order
	byID   map[string]*user // user_id
	byName map[string]*user // normalised username and every alias

	groups      []*group
	groupByID   map[string]*group
	groupByName map[string]*group // normalised name

	outbox []Enrollment

	ids *rand.Rand // deterministic ids and enrollment codes
}

func newStore(norm func(string) string, seed int64) *store {
	return &store{
		norm:        norm,
		byID:        map[string]*user{},
		byName:      map[string]*user{},
		groupByID:   map[string]*group{},
		groupByName: map[string]*group{},
		ids:         rand.New(rand.NewPCG(uint64(seed), 0x64756f74657374)),
	}
}

// defaultNormalize is how the emulator matches usernames and aliases unless
// told otherwise: trimmed and case-folded. Duo documents no rule; see doc.go.
func defaultNormalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func trimOnly(s string) string { return strings.TrimSpace(s) }

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns a fresh 20-character id with the given prefix ("DU", "DG").
func (s *store) newID(prefix string) string {
	for {
		b := []byte(prefix)
		for len(b) < 20 {
			b = append(b, idAlphabet[s.ids.IntN(len(idAlphabet))])
		}
		id := string(b)
		if s.byID[id] == nil && s.groupByID[id] == nil {
			return id
		}
	}
}

// newCode returns an enrollment code like the string Duo answers enroll with.
func (s *store) newCode() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[s.ids.IntN(len(alphabet))]
	}
	return string(b)
}

// lookup finds a user by username or alias.
func (s *store) lookup(name string) *user {
	return s.byName[s.norm(name)]
}

// nameTaken reports whether name is the username or an alias of a user other than self.
func (s *store) nameTaken(name string, self *user) bool {
	u := s.byName[s.norm(name)]
	return u != nil && u != self
}

// addUser indexes a new user; the caller has checked its names are free.
func (s *store) addUser(u *user) {
	if u.id == "" {
		u.id = s.newID("DU")
	}
	s.users = append(s.users, u)
	s.byID[u.id] = u
	for _, n := range u.names() {
		s.byName[s.norm(n)] = u
	}
}

// reindexNames replaces the name index entries of u (after a modify).
func (s *store) reindexNames(u *user, old []string) {
	for _, n := range old {
		if s.byName[s.norm(n)] == u {
			delete(s.byName, s.norm(n))
		}
	}
	for _, n := range u.names() {
		s.byName[s.norm(n)] = u
	}
}

// deleteUser removes a user and its memberships. Deletes are rare, so the
// O(n) removal from the ordered slice is fine.
func (s *store) deleteUser(u *user) {
	if i := slices.Index(s.users, u); i >= 0 {
		s.users = slices.Delete(s.users, i, i+1)
	}
	delete(s.byID, u.id)
	for _, n := range u.names() {
		if s.byName[s.norm(n)] == u {
			delete(s.byName, s.norm(n))
		}
	}
	for _, g := range u.groups {
		if i := slices.Index(g.members, u); i >= 0 {
			g.members = slices.Delete(g.members, i, i+1)
		}
	}
	u.groups = nil
}

func (s *store) addGroup(g *group) {
	if g.id == "" {
		g.id = s.newID("DG")
	}
	if g.status == "" {
		g.status = "active"
	}
	s.groups = append(s.groups, g)
	s.groupByID[g.id] = g
	s.groupByName[s.norm(g.name)] = g
}

// join adds u to g; it is a no-op when u already is a member.
func (s *store) join(u *user, g *group) {
	if u.inGroup(g) {
		return
	}
	u.groups = append(u.groups, g)
	g.members = append(g.members, u)
}

func (s *store) leave(u *user, g *group) {
	if i := slices.Index(u.groups, g); i >= 0 {
		u.groups = slices.Delete(u.groups, i, i+1)
	}
	if i := slices.Index(g.members, u); i >= 0 {
		g.members = slices.Delete(g.members, i, i+1)
	}
}

// window returns the bounds of the page [offset, offset+limit) of n items.
func window(n, offset, limit int) (lo, hi int) {
	lo = min(offset, n)
	hi = min(lo+limit, n)
	return lo, hi
}
