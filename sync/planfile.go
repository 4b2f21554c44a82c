package sync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/duosync/duosync/duo"
)

// Fingerprint records every Duo object a plan depends on, as it was when
// the plan was made, so that a saved plan can be refused once Duo changed.
type Fingerprint struct {
	Users  []UserPrint  `json:"users"`  // one per desired user, by normalised username
	Groups []GroupPrint `json:"groups"` // one per requested group
}

// UserPrint is the state of one looked-up user.
type UserPrint struct {
	Name     string `json:"name"` // the normalised username looked up
	Present  bool   `json:"present"`
	UserID   string `json:"user_id,omitempty"`
	Username string `json:"username,omitempty"` // the Duo username it matched
	Status   string `json:"status,omitempty"`
	Enrolled bool   `json:"enrolled,omitempty"`
	Hash     string `json:"hash,omitempty"` // attributes, aliases and groups
}

// GroupPrint is the state of one requested group.
type GroupPrint struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
	GroupID string `json:"group_id,omitempty"`
}

// fingerprint takes the print of the Duo objects the desired state depends on.
func fingerprint(users userIndex, groups groupIndex, want Desired) Fingerprint {
	var fp Fingerprint
	for _, u := range want.Users {
		fp.Users = append(fp.Users, userPrint(users, u.Key))
	}
	for _, name := range GroupNames(want) {
		fp.Groups = append(fp.Groups, groupPrint(groups, name))
	}
	return fp
}

func userPrint(ix userIndex, key string) UserPrint {
	p := UserPrint{Name: key}
	u, ambiguous := ix.match(key)
	if len(ambiguous) > 0 {
		ids := make([]string, len(ambiguous))
		for i, a := range ambiguous {
			ids[i] = a.ID
		}
		slices.Sort(ids)
		p.Present, p.Status, p.Hash = true, "ambiguous", hashStrings(ids)
		return p
	}
	if u == nil {
		return p
	}
	p.Present, p.UserID, p.Username, p.Status, p.Enrolled = true, u.ID, u.Username, strings.ToLower(u.Status), u.IsEnrolled
	p.Hash = userHash(*u)
	return p
}

// userHash covers the fields a plan relies on besides status and enrollment.
func userHash(u duo.User) string {
	aliases := make([]string, len(u.Aliases))
	for i, a := range u.Aliases {
		aliases[i] = Normalize(a)
	}
	slices.Sort(aliases)
	groups := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = g.ID
	}
	slices.Sort(groups)
	return hashStrings([]string{Normalize(u.Username), strings.Join(aliases, ","), strings.ToLower(u.Email),
		u.Realname, u.Firstname, u.Lastname, strings.Join(groups, ",")})
}

func hashStrings(ss []string) string {
	h := sha256.New()
	for _, s := range ss {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func groupPrint(ix groupIndex, name string) GroupPrint {
	g, found, _ := ix.find(name)
	if !found {
		return GroupPrint{Name: name}
	}
	return GroupPrint{Name: name, Present: true, GroupID: g.ID}
}

// SavedPlanVersion is the version of the plan.json format this code writes.
const SavedPlanVersion = 1

const savedPlanFormat = "duosync-plan"

// SavedPlan is plan.json: a plan with what it was made from.
type SavedPlan struct {
	Format  string    `json:"format"` // "duosync-plan"
	Version int       `json:"version"`
	Duosync string    `json:"duosync_version"`
	Created time.Time `json:"created"`
	RunID   string    `json:"run_id,omitempty"`
	DuoHost string    `json:"duo_host,omitempty"`
	// Source says what the plan was made from: the files and their SHA-256,
	// or the instance and query.
	Source SourceInfo `json:"source"`
	Policy Policy     `json:"policy"`
	Plan   Plan       `json:"plan"`
}

// SourceInfo identifies the source of a plan.
type SourceInfo struct {
	Description string `json:"description"` // file paths, or instance and query
	SHA256      string `json:"sha256"`      // of the input, files concatenated in order
}

// NewSavedPlan wraps a plan for plan -o.
func NewSavedPlan(p Plan, version string, created time.Time, src SourceInfo, policy Policy) SavedPlan {
	return SavedPlan{Format: savedPlanFormat, Version: SavedPlanVersion, Duosync: version, Created: created.UTC(),
		Source: src, Policy: policy, Plan: p}
}

// Write encodes the saved plan as indented JSON.
func (sp SavedPlan) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sp); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// WritePlanFile writes the plan to path atomically, readable by its owner only.
func WritePlanFile(path string, sp SavedPlan) error {
	var buf bytes.Buffer
	if err := sp.Write(&buf); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*.json")
	if err != nil {
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	return nil
}

// MaxPlanFileSize bounds a saved plan. A plan of max_changes (5,000 by
// default) actions is about 2 MB, and one of 100,000 actions under 32 MB,
// so a larger file is not a plan duosync made; refusing it before decoding
// keeps memory bounded (decoding costs about five times the file's size).
const MaxPlanFileSize = 32 << 20

// ReadPlanFile reads and validates a plan.json.
func ReadPlanFile(path string) (SavedPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return SavedPlan{}, fmt.Errorf("read plan: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPlanFileSize+1))
	if err != nil {
		return SavedPlan{}, fmt.Errorf("read plan: %w", err)
	}
	if len(data) > MaxPlanFileSize {
		return SavedPlan{}, fmt.Errorf("%s: larger than the %d MiB a saved plan can be: not a plan duosync made; make a new plan", path, MaxPlanFileSize>>20)
	}
	sp, err := LoadPlan(data)
	if err != nil {
		return SavedPlan{}, fmt.Errorf("%s: %w", path, err)
	}
	return sp, nil
}

// LoadPlan decodes and validates a saved plan. Any bytes give a plan or an
// error that says what is wrong, never a panic.
func LoadPlan(data []byte) (SavedPlan, error) {
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return SavedPlan{}, fmt.Errorf("not a duosync plan: %w", err)
	}
	if head.Format != savedPlanFormat {
		return SavedPlan{}, fmt.Errorf("not a duosync plan: format is %q, want %q", head.Format, savedPlanFormat)
	}
	if head.Version != SavedPlanVersion {
		return SavedPlan{}, fmt.Errorf("plan format version %d is not supported (this duosync reads version %d): make the plan again", head.Version, SavedPlanVersion)
	}
	var sp SavedPlan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return SavedPlan{}, fmt.Errorf("invalid plan: %w%s", err, whichAction(data))
	}
	if dec.More() {
		return SavedPlan{}, errors.New("invalid plan: trailing data after the plan")
	}
	if err := sp.Plan.validate(); err != nil {
		return SavedPlan{}, fmt.Errorf("invalid plan: %w", err)
	}
	return sp, nil
}

// whichAction names the first action that does not decode strictly, so that
// an error about a hand-edited field says where it is ("" if none).
func whichAction(data []byte) string {
	var raw struct {
		Plan struct {
			Actions []json.RawMessage `json:"actions"`
		} `json:"plan"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return ""
	}
	for i, a := range raw.Plan.Actions {
		dec := json.NewDecoder(bytes.NewReader(a))
		dec.DisallowUnknownFields()
		var act Action
		if err := dec.Decode(&act); err != nil {
			return fmt.Sprintf(" (in action %d, %s %s)", i+1, act.Kind, act.Username+act.Group)
		}
	}
	return ""
}

// validate checks that the actions make sense together: every action that
// needs a user or group either names its Duo id or is preceded by the
// action that creates it, and every user is fingerprinted.
func (p Plan) validate() error {
	created := map[string]bool{}
	groups := map[string]bool{}
	printed := map[string]bool{}
	for _, u := range p.Depends.Users {
		printed[u.Name] = true
		if u.Username != "" {
			printed[Normalize(u.Username)] = true
		}
	}
	for i, a := range p.Actions {
		at := func(format string, args ...any) error {
			return fmt.Errorf("action %d (%s %s): %s", i+1, a.Kind, a.Username+a.Group, fmt.Sprintf(format, args...))
		}
		if !a.Kind.valid() {
			return at("unknown kind %q", a.Kind)
		}
		if a.Kind == CreateGroup {
			if strings.TrimSpace(a.Group) == "" {
				return at("no group name")
			}
			groups[strings.ToLower(strings.TrimSpace(a.Group))] = true
			continue
		}
		if strings.TrimSpace(a.Username) == "" {
			return at("no username")
		}
		key := a.UserKey()
		if !printed[key] {
			return at("user %q is not in the plan's fingerprint", a.Username)
		}
		switch a.Kind {
		case CreateUser:
			if a.NewUser == nil || Normalize(a.NewUser.Username) != Normalize(a.Username) {
				return at("create_user needs new_user with the same username")
			}
			// The stale check reads the user by key: a key that is not the
			// username would let an edited plan create a user never checked.
			if a.Key != "" && a.Key != Normalize(a.Username) {
				return at("create_user key %q is not the username %q", a.Key, a.Username)
			}
			if created[key] {
				return at("user %q is created twice", a.Username)
			}
			created[key] = true
		case UpdateUser:
			if a.UserID == "" || len(a.Changes) == 0 {
				return at("update_user needs a user_id and changes")
			}
		case Enroll:
			if a.Email == "" {
				return at("enroll needs an email")
			}
		case AddMembership:
			if a.Group == "" {
				return at("add_membership needs a group")
			}
			if a.GroupID == "" && !groups[strings.ToLower(strings.TrimSpace(a.Group))] {
				return at("group %q has no group_id and is not created by the plan", a.Group)
			}
		}
		if a.Kind != CreateUser && a.UserID == "" && !created[key] {
			return at("user %q has no user_id and is not created before this action", a.Username)
		}
	}
	return nil
}

// StaleError says which Duo objects changed since a saved plan was made.
type StaleError struct {
	Changes []string
}

func (e *StaleError) Error() string {
	const show = 5
	n := len(e.Changes)
	s := fmt.Sprintf("saved plan is stale: %d Duo object", n)
	if n != 1 {
		s += "s"
	}
	s += " changed since it was made: " + strings.Join(e.Changes[:min(n, show)], "; ")
	if n > show {
		s += fmt.Sprintf("; and %d more", n-show)
	}
	return s + ". Make a new plan"
}

// CheckStale re-reads exactly the Duo objects the plan depends on and
// returns a *StaleError when any changed, or the read's error.
func CheckStale(ctx context.Context, p Plan, r DuoReader) error {
	names := make([]string, len(p.Depends.Users))
	for i, u := range p.Depends.Users {
		names[i] = u.Name
	}
	var users []duo.User
	if len(names) > 0 {
		var err error
		users, _, err = r.UsersFor(ctx, names)
		if err != nil {
			return fmt.Errorf("re-read Duo users for the saved plan: %w", err)
		}
	}
	var groups []duo.Group
	if len(p.Depends.Groups) > 0 {
		var err error
		groups, err = r.Groups(ctx)
		if err != nil {
			return fmt.Errorf("re-read Duo groups for the saved plan: %w", err)
		}
	}
	uix, gix := newUserIndex(users), newGroupIndex(groups)
	var changes []string
	for _, was := range p.Depends.Users {
		changes = append(changes, userChange(was, userPrint(uix, was.Name))...)
	}
	for _, was := range p.Depends.Groups {
		now := groupPrint(gix, was.Name)
		switch {
		case !was.Present && now.Present:
			changes = append(changes, fmt.Sprintf("group %q now exists in Duo (created after the plan)", was.Name))
		case was.Present && !now.Present:
			changes = append(changes, fmt.Sprintf("group %q no longer exists in Duo", was.Name))
		case was.GroupID != now.GroupID:
			changes = append(changes, fmt.Sprintf("group %q is now a different Duo group (%s, was %s)", was.Name, now.GroupID, was.GroupID))
		}
	}
	if len(changes) > 0 {
		return &StaleError{Changes: changes}
	}
	return nil
}

func userChange(was, now UserPrint) []string {
	switch {
	case !was.Present && now.Present:
		return []string{fmt.Sprintf("user %s now exists in Duo (created after the plan)", was.Name)}
	case was.Present && !now.Present:
		return []string{fmt.Sprintf("user %s no longer exists in Duo", was.Name)}
	case !was.Present:
		return nil
	case was.UserID != now.UserID:
		return []string{fmt.Sprintf("user %s is now a different Duo user (%s, was %s)", was.Name, now.UserID, was.UserID)}
	}
	var out []string
	if was.Status != now.Status {
		out = append(out, fmt.Sprintf("user %s: status changed from %q to %q", was.Name, was.Status, now.Status))
	}
	if was.Enrolled != now.Enrolled {
		out = append(out, fmt.Sprintf("user %s: enrolled changed from %t to %t", was.Name, was.Enrolled, now.Enrolled))
	}
	if was.Hash != now.Hash {
		out = append(out, fmt.Sprintf("user %s: attributes, aliases or groups changed", was.Name))
	}
	return out
}
