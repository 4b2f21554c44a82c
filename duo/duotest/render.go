package duotest

import (
	"strings"
)

// userJSON is a user object as the Admin API shows it.
type userJSON struct {
	Alias1              *string           `json:"alias1"`
	Alias2              *string           `json:"alias2"`
	Alias3              *string           `json:"alias3"`
	Alias4              *string           `json:"alias4"`
	Aliases             map[string]string `json:"aliases"`
	Created             int64             `json:"created"`
	DesktopTokens       []struct{}        `json:"desktoptokens"`
	Email               string            `json:"email"`
	EnableAutoPrompt    bool              `json:"enable_auto_prompt"`
	ExternalID          *string           `json:"external_id"`
	Firstname           string            `json:"firstname"`
	Groups              []groupJSON       `json:"groups"`
	IsEnrolled          bool              `json:"is_enrolled"`
	LastDirectorySync   *int64            `json:"last_directory_sync"`
	LastLogin           *int64            `json:"last_login"`
	Lastname            string            `json:"lastname"`
	LockoutReason       *string           `json:"lockout_reason"`
	Notes               string            `json:"notes"`
	Phones              []struct{}        `json:"phones"`
	Realname            string            `json:"realname"`
	Status              string            `json:"status"`
	Tokens              []struct{}        `json:"tokens"`
	U2FTokens           []struct{}        `json:"u2ftokens"`
	UserID              string            `json:"user_id"`
	Username            string            `json:"username"`
	WebAuthnCredentials []struct{}        `json:"webauthncredentials"`
}

// groupJSON is a group object as the Admin API shows it (also inside a user's groups[]).
type groupJSON struct {
	Desc             string `json:"desc"`
	GroupID          string `json:"group_id"`
	MobileOTPEnabled bool   `json:"mobile_otp_enabled"`
	Name             string `json:"name"`
	PushEnabled      bool   `json:"push_enabled"`
	SMSEnabled       bool   `json:"sms_enabled"`
	Status           string `json:"status"`
	VoiceEnabled     bool   `json:"voice_enabled"`
}

// groupUserJSON is one row of GET /admin/v2/groups/{id}/users.
type groupUserJSON struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

func renderUser(u *user) userJSON {
	j := userJSON{
		Aliases:             map[string]string{},
		Created:             u.created,
		DesktopTokens:       []struct{}{},
		Email:               u.email,
		EnableAutoPrompt:    true,
		Firstname:           u.firstname,
		Groups:              make([]groupJSON, 0, len(u.groups)),
		IsEnrolled:          u.enrolled,
		Lastname:            u.lastname,
		Notes:               u.notes,
		Phones:              []struct{}{},
		Realname:            u.realname,
		Status:              u.status,
		Tokens:              []struct{}{},
		U2FTokens:           []struct{}{},
		UserID:              u.id,
		Username:            u.username,
		WebAuthnCredentials: []struct{}{},
	}
	fields := []**string{&j.Alias1, &j.Alias2, &j.Alias3, &j.Alias4}
	for i, a := range u.aliases {
		if a == "" {
			continue
		}
		j.Aliases[aliasKey(i)] = a
		if i < len(fields) {
			v := a
			*fields[i] = &v
		}
	}
	if u.status == "locked out" {
		r := "Failed Attempts"
		j.LockoutReason = &r
	}
	for _, g := range u.groups {
		j.Groups = append(j.Groups, renderGroup(g))
	}
	return j
}

func renderGroup(g *group) groupJSON {
	return groupJSON{
		Desc:             g.desc,
		GroupID:          g.id,
		MobileOTPEnabled: true,
		Name:             g.name,
		PushEnabled:      true,
		SMSEnabled:       true,
		Status:           capitalize(g.status),
		VoiceEnabled:     true,
	}
}

// capitalize turns "active" into "Active", as Duo shows group status.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func aliasKey(i int) string { return "alias" + string(rune('1'+i)) }
