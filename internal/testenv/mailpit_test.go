package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoBinDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GOBIN", dir)
	if got, err := goBinDir(); err != nil || got != dir {
		t.Errorf("with GOBIN set: %q, %v; want %q", got, err, dir)
	}
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", "/first/gopath"+string(os.PathListSeparator)+"/second")
	if got, err := goBinDir(); err != nil || got != "/first/gopath/bin" {
		t.Errorf("with GOPATH: %q, %v; want /first/gopath/bin", got, err)
	}
}

// An installed binary in GOBIN is found without building anything.
func TestFindMailpitInGOBIN(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "mailpit")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(goTool(t))) // go, but no mailpit
	t.Setenv("GOBIN", dir)
	got, err := findOrInstallMailpit()
	if err != nil || got != fake {
		t.Errorf("findOrInstallMailpit = %q, %v; want %q", got, err, fake)
	}
}

func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	return p
}

func TestHtpasswdFormat(t *testing.T) {
	// {SHA} of "password", as `htpasswd -s` writes it.
	if got := htpasswd(map[string]string{"user": "password"}); got != "user:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n" {
		t.Errorf("htpasswd = %q", got)
	}
}

func TestMailpitStartsAndStops(t *testing.T) {
	m := Mailpit(t)
	if !strings.HasPrefix(m.SMTPAddr, "127.0.0.1:") || !strings.HasPrefix(m.APIURL, "http://127.0.0.1:") {
		t.Errorf("not on loopback: %s %s", m.SMTPAddr, m.APIURL)
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("a fresh mailpit holds %d messages", n)
	}
	m.Stop()
	m.Stop() // twice is fine
	if c, err := net.Dial("tcp", m.SMTPAddr); err == nil {
		c.Close()
		t.Errorf("SMTP still answers after Stop")
	}
}
