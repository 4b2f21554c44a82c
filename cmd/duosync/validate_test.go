package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateExitCodesAndJSON(t *testing.T) {
	dir := t.TempDir()
	valid := writeFile(t, dir, "valid.csv", "number,sys_id,approval,state,cat_item,requested_for.user_name,requested_for.email,requested_for.first_name,requested_for.last_name,requested_for.name,variables.duo_group\r\n"+
		"RITM0000001,0123456789abcdef0123456789abcdef,Approved,Open,Duo MFA Enrollment,ann,ann@example.com,Ann,Lee,Ann Lee,MFA Users\r\n")
	html := writeFile(t, dir, "login.csv", "<!DOCTYPE html><html><head><title>Log in | ServiceNow</title></head><body>session expired</body></html>\n")

	if r := runBin(t, nil, "validate", "--source", valid); r.code != 0 || !strings.Contains(r.stdout, "All rows are valid.") {
		t.Errorf("valid export: %v", r)
	}
	r := runBin(t, nil, "validate", "--source", repoFile("sample.csv"), "--format", "json")
	if r.code != exitError {
		t.Errorf("sample.csv has one invalid row: want exit 1, got %v", r)
	}
	var out struct {
		Files []struct {
			Path, Encoding string
			Rows           int
			Refused        *string
		}
		Requests struct {
			Provision int
			Skip      map[string]int
			Reject    map[string]int
		}
		Invalid []struct {
			File, Column, Reason, Detail string
			Line                         int
		}
		Users, Memberships int
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("validate --format json: %v\n%s", err, r.stdout)
	}
	if len(out.Files) != 1 || out.Files[0].Rows != 25 || out.Files[0].Refused != nil {
		t.Errorf("files: %+v", out.Files)
	}
	if out.Users != 9 || out.Memberships != 11 || out.Requests.Provision != 11 {
		t.Errorf("users %d, memberships %d, provision %d; want 9, 11, 11", out.Users, out.Memberships, out.Requests.Provision)
	}
	if out.Requests.Skip["not_approved"] != 12 || out.Requests.Skip["closed_incomplete"] != 1 || out.Requests.Reject["invalid_email"] != 1 {
		t.Errorf("skip %v reject %v", out.Requests.Skip, out.Requests.Reject)
	}
	if len(out.Invalid) != 1 || out.Invalid[0].Line != 12 || out.Invalid[0].Column != "requested_for.email" || out.Invalid[0].Reason != "invalid_email" {
		t.Errorf("invalid: %+v", out.Invalid)
	}

	r = runBin(t, nil, "validate", "--source", html)
	if r.code != exitUsage || !strings.Contains(r.stdout+r.stderr, "HTML") {
		t.Errorf("an HTML login page saved as .csv: want exit 64 saying it is HTML, got %v", r)
	}
	// A broken source applies nothing, even with other good files.
	r = runBin(t, []string{"DUO_HOST=127.0.0.1:1", "DUO_IKEY=DIX", "DUO_SKEY=x", "DUOSYNC_STATE_DIR=" + dir + "/s"}, "plan", "--source", valid, "--source", html)
	if r.code != exitError || !strings.Contains(r.stderr, "login.csv") {
		t.Errorf("plan with a refused file: %v", r)
	}
}
