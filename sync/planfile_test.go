package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/duosync/duosync/duo"
)

func savedScenario(t *testing.T) (SavedPlan, *fakeDuo) {
	t.Helper()
	have, want, hist := scenario(t)
	f := newFakeDuo(have.Users, have.Groups)
	plan := Diff(f.have(want), want, hist, DefaultPolicy(), now)
	sp := NewSavedPlan(plan, "v1.2.3", now, SourceInfo{Description: "sample.csv", SHA256: strings.Repeat("ab", 32)}, DefaultPolicy())
	return sp, f
}

func TestSavedPlanRoundTrip(t *testing.T) {
	sp, _ := savedScenario(t)
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlanFile(path, sp); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	got, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Plan.Actions, sp.Plan.Actions) || !reflect.DeepEqual(got.Plan.Depends, sp.Plan.Depends) {
		t.Error("actions or fingerprint changed in the round trip")
	}
	if got.Duosync != "v1.2.3" || got.Source.SHA256 != sp.Source.SHA256 || !got.Created.Equal(now) || got.Version != SavedPlanVersion {
		t.Errorf("header = %+v", got)
	}
	if got.Policy.MaxCreates.String() != "10%" || got.Policy.ResendAfter != sp.Policy.ResendAfter {
		t.Errorf("policy = %+v", got.Policy)
	}
	if SummaryLine(got.Plan) != SummaryLine(sp.Plan) {
		t.Error("summary changed")
	}
}

func TestLoadPlanRejectsBadInput(t *testing.T) {
	sp, _ := savedScenario(t)
	var good bytes.Buffer
	if err := sp.Write(&good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	actions := func(m map[string]any) []any { return m["plan"].(map[string]any)["actions"].([]any) }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a duosync plan"},
		{"not json", []byte("Plan: 3 users to create"), "not a duosync plan"},
		{"other json", []byte(`{"terraform_version":"1.9"}`), `format is ""`},
		{"newer version", edit(func(m map[string]any) { m["version"] = 2 }), "version 2 is not supported"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = true }), `unknown field "extra"`},
		{"trailing data", append(bytes.Clone(good.Bytes()), []byte(`{}`)...), "after top-level value"},
		{"wrong type", edit(func(m map[string]any) { m["plan"].(map[string]any)["actions"] = "all" }), "invalid plan"},
		{"unknown kind", edit(func(m map[string]any) { actions(m)[0].(map[string]any)["kind"] = "delete_user" }), `unknown kind "delete_user"`},
		{"membership before create", edit(func(m map[string]any) {
			a := actions(m)
			a[0], a[2] = a[2], a[0]
		}), "not created before this action"},
		{"user not fingerprinted", edit(func(m map[string]any) {
			m["plan"].(map[string]any)["depends"].(map[string]any)["users"] = []any{}
		}), "not in the plan's fingerprint"},
		{"create without fields", edit(func(m map[string]any) { delete(actions(m)[0].(map[string]any), "new_user") }), "needs new_user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPlan(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := LoadPlan(good.Bytes()); err != nil {
		t.Errorf("good plan: %v", err)
	}
}

func FuzzLoadPlan(f *testing.F) {
	sp := NewSavedPlan(Plan{
		Actions: []Action{
			{Kind: CreateGroup, Group: "G"},
			{Kind: CreateUser, Username: "a@x.io", NewUser: &UserFields{Username: "a@x.io"}},
			{Kind: AddMembership, Username: "a@x.io", Group: "G"},
		},
		Depends: Fingerprint{Users: []UserPrint{{Name: "a@x.io"}}},
	}, "dev", now, SourceInfo{}, DefaultPolicy())
	var b bytes.Buffer
	_ = sp.Write(&b)
	f.Add(b.Bytes())
	f.Add([]byte(`{"format":"duosync-plan","version":1}`))
	f.Add([]byte(`{"format":"duosync-plan","version":1,"plan":{"actions":[{"kind":"enroll"}]}}`))
	f.Add([]byte(`{"format":"duosync-plan","version":1,"policy":{"max_creates":"10%%"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := LoadPlan(data)
		if err != nil {
			return
		}
		// Whatever loads must render and re-save without trouble.
		var out bytes.Buffer
		if err := Render(&out, sp.Plan); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := sp.Write(&out); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPlan(out.Bytes()); err != nil {
			t.Fatalf("a loaded plan does not load again: %v", err)
		}
	})
}

func TestCheckStale(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(f *fakeDuo)
		want   []string // substrings of the error; none = fresh
	}{
		{"nothing changed", func(*fakeDuo) {}, nil},
		{"a planned user was created", func(f *fakeDuo) {
			_, _ = f.CreateUser(ctx, duo.NewUser{Username: "jane.doe@example.com"})
		}, []string{"user jane.doe@example.com now exists in Duo (created after the plan)"}},
		{"an existing user was deleted", func(f *fakeDuo) {
			f.remove("carl.poe@example.com")
		}, []string{"user carl.poe@example.com no longer exists in Duo"}},
		{"an existing user was disabled", func(f *fakeDuo) {
			f.users[0].Status = "disabled"
		}, []string{`user carl.poe@example.com: status changed from "active" to "disabled"`}},
		{"an existing user enrolled", func(f *fakeDuo) {
			f.users[2].IsEnrolled = true
		}, []string{"user gus.fox@example.com: enrolled changed from false to true"}},
		{"an existing user joined a group", func(f *fakeDuo) {
			f.users[0].Groups = append(f.users[0].Groups, mfa)
		}, []string{"user carl.poe@example.com: attributes, aliases or groups changed"}},
		{"a missing group was created", func(f *fakeDuo) {
			_, _ = f.CreateGroup(ctx, "Contractors")
		}, []string{`group "Contractors" now exists in Duo`}},
		{"a group was deleted", func(f *fakeDuo) {
			f.groups = f.groups[1:]
		}, []string{`group "VPN Users" no longer exists in Duo`}},
		{"an unrelated user was created", func(f *fakeDuo) {
			_, _ = f.CreateUser(ctx, duo.NewUser{Username: "someone.else@example.com"})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, f := savedScenario(t)
			tt.change(f)
			err := CheckStale(ctx, sp.Plan, f)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("fresh plan refused: %v", err)
				}
				return
			}
			var se *StaleError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a StaleError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "saved plan is stale: 1 Duo object changed") {
				t.Errorf("error = %q", err)
			}
		})
	}
}

// failingReader fails its reads, as an incomplete Duo read must.
type failingReader struct{ *fakeDuo }

func (failingReader) UsersFor(context.Context, []string) ([]duo.User, int, error) {
	return nil, 0, errors.New("GET /admin/v1/users: page 3 failed: HTTP 429")
}

func TestCheckStaleFailsOnAFailedRead(t *testing.T) {
	sp, f := savedScenario(t)
	err := CheckStale(context.Background(), sp.Plan, failingReader{f})
	var se *StaleError
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "page 3 failed") {
		t.Errorf("err = %v", err)
	}
}

func TestReadPlanFileRefusesAHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(p, bytes.Repeat([]byte(" "), MaxPlanFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPlanFile(p); err == nil || !strings.Contains(err.Error(), "larger than the 32 MiB") {
		t.Fatalf("a file over the limit: %v", err)
	}
}

func TestLoadPlanNamesTheActionOfAnUnknownField(t *testing.T) {
	data := []byte(`{"format":"duosync-plan","version":1,"plan":{"actions":[
		{"kind":"enroll","username":"a@example.com","email":"a@example.com","reason":"x"},
		{"kind":"enroll","username":"b@example.com","email":"b@example.com","reason":"x","force_delete":true}]}}`)
	_, err := LoadPlan(data)
	if err == nil || !strings.Contains(err.Error(), `unknown field "force_delete"`) || !strings.Contains(err.Error(), "in action 2, enroll b@example.com") {
		t.Fatalf("error %v: want the field and the action", err)
	}
}
