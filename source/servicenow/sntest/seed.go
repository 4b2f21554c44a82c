package sntest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Seed is the emulator's initial data, as JSON (duosync emulate servicenow --seed FILE).
type Seed struct {
	Users        []SeedUser    `json:"users"`
	CatalogItems []SeedCatItem `json:"catalog_items"`
	Requests     []SeedRequest `json:"requests"`
}

// SeedUser is a sys_user record.
type SeedUser struct {
	SysID     string `json:"sys_id"` // generated from user_name when empty
	UserName  string `json:"user_name"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Name      string `json:"name"` // "First Last" when empty
	Email     string `json:"email"`
	Active    string `json:"active"` // "true" when empty
}

// SeedCatItem is an sc_cat_item record.
type SeedCatItem struct {
	SysID string `json:"sys_id"`
	Name  string `json:"name"`
}

// SeedRequest is an sc_req_item record with its catalog variables.
type SeedRequest struct {
	SysID        string            `json:"sys_id"`
	Number       string            `json:"number"`
	Approval     string            `json:"approval"` // raw: approved, requested, rejected, ...
	State        string            `json:"state"`    // raw code: 1, 2, 3, 4, 7, -5
	CatItem      string            `json:"cat_item"` // a catalog item name or sys_id (created when unknown)
	RequestedFor string            `json:"requested_for"`
	Variables    map[string]string `json:"variables"`
	UpdatedOn    string            `json:"sys_updated_on"` // raw UTC "YYYY-MM-DD HH:MM:SS"
}

// LoadSeed reads a seed file; unknown keys are errors, so typos do not pass silently.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return &s, nil
}

// sysID derives a stable 32-hex sys_id, like ServiceNow's, from a name.
func sysID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

const timeLayout = "2006-01-02 15:04:05"

// load puts a seed into the database, checking references.
func (d *db) load(s *Seed) error {
	users, items, ritms := d.tables["sys_user"], d.tables["sc_cat_item"], d.tables["sc_req_item"]
	byUserName := map[string]string{}
	for i, u := range s.Users {
		if u.UserName == "" && u.SysID == "" {
			return fmt.Errorf("seed users[%d]: user_name or sys_id is required", i)
		}
		id := u.SysID
		if id == "" {
			id = sysID("sys_user", u.UserName)
		}
		if users.get(id) != nil {
			return fmt.Errorf("seed users[%d]: duplicate sys_id %s", i, id)
		}
		name := u.Name
		if name == "" {
			name = strings.TrimSpace(u.FirstName + " " + u.LastName)
		}
		active := u.Active
		if active == "" {
			active = "true"
		}
		users.insert(map[string]string{"sys_id": id, "user_name": u.UserName, "first_name": u.FirstName,
			"last_name": u.LastName, "name": name, "email": u.Email, "active": active, "locked_out": "false"})
		byUserName[u.UserName] = id
	}
	itemByName := map[string]string{}
	addItem := func(id, name string) string {
		if id == "" {
			id = sysID("sc_cat_item", name)
		}
		if items.get(id) == nil {
			items.insert(map[string]string{"sys_id": id, "name": name, "active": "true"})
		}
		itemByName[name] = id
		return id
	}
	for _, it := range s.CatalogItems {
		addItem(it.SysID, it.Name)
	}
	varDefs := map[string]string{}
	numbers := map[string]bool{}
	for i, r := range s.Requests {
		where := fmt.Sprintf("seed requests[%d]", i)
		if r.Number == "" {
			return fmt.Errorf("%s: number is required", where)
		}
		if numbers[r.Number] {
			return fmt.Errorf("%s: duplicate number %s", where, r.Number)
		}
		numbers[r.Number] = true
		id := r.SysID
		if id == "" {
			id = sysID("sc_req_item", r.Number)
		}
		if ritms.get(id) != nil {
			return fmt.Errorf("%s: duplicate sys_id %s", where, id)
		}
		userID := r.RequestedFor
		if u, ok := byUserName[userID]; ok {
			userID = u
		} else if userID != "" && users.get(userID) == nil {
			return fmt.Errorf("%s: requested_for %q is no seeded user", where, r.RequestedFor)
		}
		itemID := r.CatItem
		if id, ok := itemByName[itemID]; ok {
			itemID = id
		} else if itemID != "" && items.get(itemID) == nil {
			itemID = addItem("", r.CatItem)
		}
		updated := r.UpdatedOn
		if updated == "" {
			updated = "2026-01-01 00:00:00"
		}
		if _, err := time.Parse(timeLayout, updated); err != nil {
			return fmt.Errorf("%s: sys_updated_on %q is not YYYY-MM-DD HH:MM:SS", where, updated)
		}
		state, approval := r.State, r.Approval
		if state == "" {
			state = "1"
		}
		if approval == "" {
			approval = "requested"
		}
		active := "true"
		if state == "3" || state == "4" || state == "7" {
			active = "false"
		}
		ritms.insert(map[string]string{"sys_id": id, "number": r.Number, "approval": approval, "state": state,
			"active": active, "cat_item": itemID, "requested_for": userID, "opened_by": userID,
			"short_description": "Duo access for " + r.RequestedFor, "sys_created_on": updated,
			"sys_updated_on": updated, "sys_mod_count": "0", "work_notes": "", "comments": ""})
		for name, value := range r.Variables {
			d.setVariable(id, name, value, varDefs)
		}
	}
	return nil
}

// setVariable stores a catalog variable the way an instance does: an
// sc_item_option row (pointing to the item_option_new definition) linked to
// the RITM by an sc_item_option_mtom row.
func (d *db) setVariable(ritmID, name, value string, defs map[string]string) {
	defID, ok := defs[name]
	if !ok {
		defID = sysID("item_option_new", name)
		d.tables["item_option_new"].insert(map[string]string{"sys_id": defID, "name": name,
			"question_text": strings.ReplaceAll(name, "_", " "), "type": "6"})
		defs[name] = defID
	}
	optID := sysID("sc_item_option", ritmID, name)
	d.tables["sc_item_option"].insert(map[string]string{"sys_id": optID, "item_option_new": defID, "value": value})
	d.tables["sc_item_option_mtom"].insert(map[string]string{"sys_id": sysID("sc_item_option_mtom", ritmID, name),
		"request_item": ritmID, "sc_item_option": optID})
	if d.vars[ritmID] == nil {
		d.vars[ritmID] = map[string]string{}
	}
	d.vars[ritmID][name] = value
}

// Generated data: a few groups and catalog items, names with accents.
var (
	genGroups = []string{"MFA Users", "VPN Users", "Finance MFA", "Engineering, Platform"}
	genItems  = []string{"Duo MFA Enrollment", "Duo Group Access"}
	genFirst  = [][2]string{{"Ana", "ana"}, {"José", "jose"}, {"Zoë", "zoe"}, {"Liam", "liam"},
		{"Noah", "noah"}, {"Mia", "mia"}, {"Chloé", "chloe"}, {"Omar", "omar"}, {"Priya", "priya"}, {"Sven", "sven"}}
	genLast = [][2]string{{"Müller", "muller"}, {"García", "garcia"}, {"Smith", "smith"}, {"O'Brien", "obrien"},
		{"Nguyen", "nguyen"}, {"Kowalski", "kowalski"}, {"Dubois", "dubois"}, {"Rossi", "rossi"}}
)

// Generate returns a deterministic synthetic seed of n requests, one user
// each (first.last.N@example.com): mostly approved, some requested, rejected
// or closed incomplete, a few for an inactive user.
func Generate(n int, seed int64) *Seed {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5e4))
	s := &Seed{}
	for _, it := range genItems {
		s.CatalogItems = append(s.CatalogItems, SeedCatItem{Name: it})
	}
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		f, l := genFirst[rng.IntN(len(genFirst))], genLast[rng.IntN(len(genLast))]
		login := fmt.Sprintf("%s.%s.%d", f[1], l[1], i)
		u := SeedUser{UserName: login, FirstName: f[0], LastName: l[0], Email: login + "@example.com", Active: "true"}
		if rng.IntN(50) == 0 {
			u.Active = "false"
		}
		s.Users = append(s.Users, u)
		approval, state := "approved", "2"
		switch p := rng.IntN(100); {
		case p < 10:
			approval, state = "requested", "1"
		case p < 15:
			approval, state = "rejected", "4"
		case p < 18:
			approval, state = "approved", "4"
		case p < 20:
			approval, state = "not requested", "1"
		}
		r := SeedRequest{Number: fmt.Sprintf("RITM%07d", 10000+i), Approval: approval, State: state,
			RequestedFor: login, UpdatedOn: base.Add(time.Duration(i) * time.Minute).Format(timeLayout)}
		if rng.IntN(3) == 0 {
			r.CatItem = genItems[0] // the group comes from groups_by_item
		} else {
			r.CatItem = genItems[1]
			r.Variables = map[string]string{"duo_group": genGroups[rng.IntN(len(genGroups))]}
		}
		s.Requests = append(s.Requests, r)
	}
	return s
}
