package duotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// Seed is the initial content of the emulated account.
type Seed struct {
	Users  []SeedUser  `json:"users"`
	Groups []SeedGroup `json:"groups"`
}

// SeedUser is a user of a Seed. Groups are names of groups of the seed.
type SeedUser struct {
	UserID     string   `json:"user_id,omitempty"` // optional; generated when empty
	Username   string   `json:"username"`
	Aliases    []string `json:"aliases,omitempty"` // alias1, alias2, ... (at most 8)
	Email      string   `json:"email,omitempty"`
	Realname   string   `json:"realname,omitempty"`
	Firstname  string   `json:"firstname,omitempty"`
	Lastname   string   `json:"lastname,omitempty"`
	Notes      string   `json:"notes,omitempty"`
	Status     string   `json:"status,omitempty"` // default active
	IsEnrolled bool     `json:"is_enrolled,omitempty"`
	Groups     []string `json:"groups,omitempty"`
}

// SeedGroup is a group of a Seed.
type SeedGroup struct {
	GroupID string `json:"group_id,omitempty"` // optional; generated when empty
	Name    string `json:"name"`
	Desc    string `json:"desc,omitempty"`
	Status  string `json:"status,omitempty"` // default active
}

// LoadSeed reads a seed JSON file. Unknown fields are refused, and errors
// name the file and the line, or the user or group at fault.
func LoadSeed(path string) (*Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	seed, err := ParseSeed(data)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return seed, nil
}

// ParseSeed parses and checks seed JSON.
func ParseSeed(data []byte) (*Seed, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var seed Seed
	if err := dec.Decode(&seed); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("line %d: %w", lineOf(data, syn.Offset), err)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("line %d: field %s: %w", lineOf(data, typ.Offset), typ.Field, err)
		case errors.Is(err, io.EOF):
			return nil, errors.New("empty file")
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	if err := newStore(defaultNormalize, 0).loadSeed(&seed, time.Unix(0, 0)); err != nil {
		return nil, err
	}
	return &seed, nil
}

func lineOf(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

func validStatus(s string, user bool) bool {
	switch s {
	case "active", "bypass", "disabled":
		return true
	case "locked out", "pending deletion":
		return user
	}
	return false
}

// loadSeed adds a seed's groups, then its users, checking each the way the
// API would (unique names and ids, known statuses and groups).
func (s *store) loadSeed(seed *Seed, now time.Time) error {
	for i, sg := range seed.Groups {
		where := fmt.Sprintf("groups[%d]", i)
		name := strings.TrimSpace(sg.Name)
		switch {
		case name == "":
			return fmt.Errorf("%s: name is empty", where)
		case s.groupByName[s.norm(name)] != nil:
			return fmt.Errorf("%s: duplicate group name %q", where, name)
		case sg.GroupID != "" && (s.groupByID[sg.GroupID] != nil || s.byID[sg.GroupID] != nil):
			return fmt.Errorf("%s (%s): duplicate group_id %q", where, name, sg.GroupID)
		}
		status := strings.ToLower(sg.Status)
		if status == "" {
			status = "active"
		}
		if !validStatus(status, false) {
			return fmt.Errorf("%s (%s): status %q is not active, bypass or disabled", where, name, sg.Status)
		}
		s.addGroup(&group{id: sg.GroupID, name: name, desc: sg.Desc, status: status})
	}
	for i, su := range seed.Users {
		where := fmt.Sprintf("users[%d]", i)
		name := strings.TrimSpace(su.Username)
		if name == "" {
			return fmt.Errorf("%s: username is empty", where)
		}
		where += " (" + name + ")"
		if len(su.Aliases) > maxAliases {
			return fmt.Errorf("%s: %d aliases, at most %d", where, len(su.Aliases), maxAliases)
		}
		u := &user{id: su.UserID, username: name, email: su.Email, realname: su.Realname, firstname: su.Firstname,
			lastname: su.Lastname, notes: su.Notes, status: strings.ToLower(su.Status), enrolled: su.IsEnrolled,
			created: now.Unix()}
		if u.status == "" {
			u.status = "active"
		}
		if !validStatus(u.status, true) {
			return fmt.Errorf("%s: unknown status %q", where, su.Status)
		}
		for j, a := range su.Aliases {
			u.aliases[j] = strings.TrimSpace(a)
		}
		seen := map[string]bool{}
		for _, n := range u.names() {
			if s.byName[s.norm(n)] != nil || seen[s.norm(n)] {
				return fmt.Errorf("%s: username or alias %q is already used", where, n)
			}
			seen[s.norm(n)] = true
		}
		if u.id != "" && (s.byID[u.id] != nil || s.groupByID[u.id] != nil) {
			return fmt.Errorf("%s: duplicate user_id %q", where, u.id)
		}
		var gs []*group
		for _, gn := range su.Groups {
			g := s.groupByName[s.norm(gn)]
			if g == nil {
				return fmt.Errorf("%s: group %q is not in the seed's groups", where, gn)
			}
			gs = append(gs, g)
		}
		if len(gs) > maxGroupsPerUser {
			return fmt.Errorf("%s: %d groups, Duo allows %d", where, len(gs), maxGroupsPerUser)
		}
		s.addUser(u)
		for _, g := range gs {
			s.join(u, g)
		}
	}
	return nil
}

var (
	firstNames = []string{"Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger",
		"Radia", "Donald", "Hedy", "Tim", "Katherine", "Niklaus", "Sophie", "John", "Mary", "Leslie"}
	lastNames = []string{"Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie",
		"Allen", "Dijkstra", "Perlman", "Knuth", "Lamarr", "Berners-Lee", "Johnson", "Wirth", "Wilson", "McCarthy",
		"Keller", "Lamport"}
)

// generate adds n synthetic users and g synthetic groups, deterministic for
// a seed: about 15% not enrolled, 3% disabled, 1% bypass, each user in 0 to
// 3 random groups.
func (s *store) generate(n, g int, seed int64, now time.Time) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x67656e))
	if len(s.users) == 0 && n > 0 {
		// Sized once: growing maps of 200,000 names is most of the cost.
		s.byID = make(map[string]*user, n)
		s.byName = make(map[string]*user, 2*n)
		s.users = make([]*user, 0, n)
	}
	base := len(s.groups)
	for j := 0; j < g; j++ {
		name := fmt.Sprintf("Generated Group %03d", j+1)
		for k := 2; s.groupByName[s.norm(name)] != nil; k++ {
			name = fmt.Sprintf("Generated Group %03d (%d)", j+1, k)
		}
		s.addGroup(&group{name: name, desc: "synthetic group"})
	}
	gen := s.groups[base:]
	created := now.Add(-365 * 24 * time.Hour).Unix()
	var buf []byte
	for i := 0; i < n; i++ {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		// first.last.N@example.com and its alias fLastN, built without fmt: this loop runs 100,000 times.
		buf = append(append(append(append(buf[:0], first...), '.'), last...), '.')
		buf = append(strconv.AppendInt(buf, int64(i), 10), "@example.com"...)
		username := strings.ToLower(string(buf))
		buf = append(append(append(buf[:0], first[0]), last...), username[len(first)+len(last)+2:len(username)-len("@example.com")]...)
		alias := strings.ToLower(string(buf))
		if s.byName[s.norm(username)] != nil || s.byName[s.norm(alias)] != nil {
			continue // taken by the seed: skip rather than fail
		}
		u := &user{username: username, email: username, realname: first + " " + last, firstname: first,
			lastname: last, status: "active", enrolled: true, created: created + int64(i)}
		u.aliases[0] = alias
		switch r := rng.IntN(100); {
		case r < 15:
			u.enrolled = false
		case r < 18:
			u.status = "disabled"
		case r < 19:
			u.status = "bypass"
		}
		s.addUser(u)
		if len(gen) > 0 {
			for k := rng.IntN(4); k > 0; k-- {
				s.join(u, gen[rng.IntN(len(gen))])
			}
		}
	}
}
