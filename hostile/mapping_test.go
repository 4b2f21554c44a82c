package hostile

import (
	"fmt"
	"strings"

	"github.com/duosync/duosync/source"
	dsync "github.com/duosync/duosync/sync"
)

// request builds a good approved request; set overrides fields.
func request(line int, set map[string]string) source.Request {
	f := map[string]string{
		"number": fmt.Sprintf("RITM%07d", line), "sys_id": fmt.Sprintf("%032x", line), "approval": "Approved",
		"state": "Open", "cat_item": "Duo MFA Enrollment", "requested_for.user_name": fmt.Sprintf("user%d", line),
		"requested_for.email": fmt.Sprintf("user%d@example.com", line), "requested_for.first_name": "F",
		"requested_for.last_name": "L", "requested_for.name": "F L", "variables.duo_group": "MFA Users",
		"sys_updated_on": "2026-11-30 14:05:12",
	}
	for k, v := range set {
		f[k] = v
	}
	return source.Request{Fields: f, Origin: source.Origin{File: "export.csv", Line: line}}
}

// rejected adds the requests and checks that the bad one (at line bad) is
// rejected with a problem naming its line and column, and that no desired
// user carries a control character.
func rejected(m dsync.Mapping, bad int, col string, reqs ...source.Request) error {
	b, err := dsync.NewBuilder(m, dsync.Filter{})
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if err := b.Add(r); err != nil {
			return fmt.Errorf("Add: %w", err)
		}
	}
	d := b.Finish()
	for _, u := range d.Users {
		for _, v := range append([]string{u.Username, u.Email, u.Realname}, u.Aliases...) {
			if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' }) >= 0 {
				return fmt.Errorf("desired user %q carries a control character in %q", u.Username, v)
			}
		}
	}
	for _, p := range d.Invalid {
		if p.Line == bad && p.File == "export.csv" && p.Column == col && p.Reason != "" {
			return nil
		}
	}
	return fmt.Errorf("line %d not rejected at column %s; invalid: %+v", bad, col, d.Invalid)
}

func mappingCases() []hostileCase {
	ctl := func(name, field, value string) hostileCase {
		return hostileCase{area: "mapping", name: name,
			what: fmt.Sprintf("a request whose %s is %q", field, value),
			want: "that request rejected with its line and column; the others provisioned; nothing written",
			run: func(string) error {
				return rejected(dsync.DefaultMapping(), 2, field,
					request(1, nil), request(2, map[string]string{field: value}), request(3, nil))
			}}
	}
	return []hostileCase{
		ctl("email-with-newline", "requested_for.email", "jane@example.com\nBcc: all@example.com"),
		ctl("email-with-nul", "requested_for.email", "jane\x00@example.com"),
		ctl("email-with-escape", "requested_for.email", "jane\x1b[31m@example.com"),
		ctl("email-with-bidi-override", "requested_for.email", "jane\u202emoc.elpmaxe@example.com"),
		{area: "mapping", name: "username-with-controls",
			what: "username mapped from user_name holding a tab, a CR and a DEL",
			want: "that request rejected at its line, column requested_for.user_name",
			run: func(string) error {
				m := dsync.DefaultMapping()
				m.Username = "{requested_for.user_name}"
				return rejected(m, 2, "requested_for.user_name",
					request(1, nil), request(2, map[string]string{"requested_for.user_name": "ja\tne\r\x7f"}), request(3, nil))
			}},
		{area: "mapping", name: "group-with-controls",
			what: "a requested Duo group name with a newline and a NUL",
			want: "that request rejected at its line, column variables.duo_group",
			run: func(string) error {
				return rejected(dsync.DefaultMapping(), 2, "variables.duo_group",
					request(1, nil), request(2, map[string]string{"variables.duo_group": "VPN\nAdmins\x00"}), request(3, nil))
			}},
		{area: "mapping", name: "bad-templates",
			what: "mapping templates that are broken: '{', '}', '{}', '{a{b}}', a 1 MB template",
			want: "each an error naming the mapping key; no panic",
			run: func(string) error {
				for _, tpl := range []string{"{", "}", "{}", "{a{b}}", "x}{y", "{ }", strings.Repeat("{", 1<<20)} {
					m := dsync.DefaultMapping()
					m.Alias3 = tpl
					if err := wantErr(m.Validate(), "mapping.alias3"); err != nil {
						return fmt.Errorf("template %q: %w", clip(tpl), err)
					}
				}
				return nil
			}},
	}
}
