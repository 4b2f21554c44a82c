package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/source"
	"github.com/duosync/duosync/source/servicenow"
)

func TestEmulateServiceNowBadFlags(t *testing.T) {
	cases := map[string][]string{
		"fault rate": {"--fault-rate", "1.5"},
		"rate limit": {"--rate-limit", "lots/h"},
		"unknown":    {"--bogus"},
		"seed":       {"--seed", filepath.Join(t.TempDir(), "missing.json")},
		"argument":   {"extra"},
		"negative":   {"--generate", "-1"},
		"token ttl":  {"--token-ttl", "0s"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runEmulateServiceNow(context.Background(), args, &stdout, &stderr)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "emulate servicenow") {
				t.Errorf("err %v (exit %d), want a usage error", err, exitCode(err))
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// The command prints one ready line, serves the Table API to the real
// client, and stops when the context is cancelled; the password comes from
// the environment, not argv.
func TestEmulateServiceNowServes(t *testing.T) {
	t.Setenv("SN_PASSWORD", "emulator-password-42")
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(`{"users":[{"user_name":"ada","first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}],
		"requests":[{"number":"RITM0000001","approval":"approved","state":"2","cat_item":"Duo MFA Enrollment","requested_for":"ada",
		"variables":{"duo_group":"MFA Users"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- runEmulateServiceNow(ctx, []string{"--seed", seed, "--generate", "20", "--page-cap", "7", "--rate-limit", "1000/m"}, outW, &stderr)
		outW.Close()
	}()
	rd := bufio.NewReader(outR)
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr: %s", err, stderr.String())
	}
	var ready map[string]string
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	if !strings.HasPrefix(ready["url"], "http://127.0.0.1:") || ready["user"] == "" || ready["password"] != "emulator-password-42" {
		t.Errorf("ready line %v", ready)
	}

	c, err := servicenow.New(servicenow.Config{Instance: ready["url"], User: ready["user"], Password: ready["password"],
		Query: "approval=approved", PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	if _, err := c.Fetch(ctx, func(r source.Request) error { groups[r.Number()] = r.Get("variables.duo_group"); return nil }); err != nil {
		t.Fatal(err)
	}
	if groups["RITM0000001"] != "MFA Users" || len(groups) < 10 {
		t.Errorf("fetched %d requests, RITM0000001 group %q", len(groups), groups["RITM0000001"])
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runEmulateServiceNow returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not stop when the context was cancelled")
	}
	if rest, _ := io.ReadAll(rd); len(rest) != 0 {
		t.Errorf("more than the ready line on stdout: %q", rest)
	}
}
