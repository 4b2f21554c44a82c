package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func homeAt(dir string) func() (string, error) {
	return func() (string, error) { return dir, nil }
}

func TestResolvePrecedence(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home")
	tests := []struct {
		name       string
		configured string
		env        map[string]string
		want       string
		from       string
	}{
		{"configured wins", filepath.Join(base, "conf"), map[string]string{"STATE_DIRECTORY": filepath.Join(base, "sd"), "XDG_STATE_HOME": filepath.Join(base, "xdg")}, filepath.Join(base, "conf"), "state_dir"},
		{"configured tilde", "~/st", nil, filepath.Join(home, "st"), "state_dir"},
		{"systemd first of several", "", map[string]string{"STATE_DIRECTORY": filepath.Join(base, "sd1") + ":" + filepath.Join(base, "sd2"), "XDG_STATE_HOME": filepath.Join(base, "xdg")}, filepath.Join(base, "sd1"), "$STATE_DIRECTORY"},
		{"xdg", "", map[string]string{"XDG_STATE_HOME": filepath.Join(base, "xdg")}, filepath.Join(base, "xdg", "duosync"), "$XDG_STATE_HOME"},
		{"relative xdg ignored", "", map[string]string{"XDG_STATE_HOME": "rel/xdg"}, filepath.Join(home, ".local", "state", "duosync"), "home"},
		{"home default", "", nil, filepath.Join(home, ".local", "state", "duosync"), "home"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := resolve(tt.configured, env(tt.env), homeAt(home))
			if err != nil {
				t.Fatal(err)
			}
			if info.Path != tt.want || info.From != tt.from {
				t.Fatalf("got %q from %s, want %q from %s", info.Path, info.From, tt.want, tt.from)
			}
			st, err := os.Stat(info.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Fatalf("mode %v, want directory 0700", st.Mode())
			}
		})
	}
}

func TestResolveCreatesOnceAndWarnsOnOpenMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	info, err := resolve(dir, env(nil), homeAt(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created || info.Warning != "" {
		t.Fatalf("first resolve: %+v", info)
	}
	info, err = resolve(dir, env(nil), homeAt(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if info.Created || info.Warning != "" {
		t.Fatalf("second resolve: %+v", info)
	}

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	info, err = resolve(dir, env(nil), homeAt(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.Warning, "0755") || !strings.Contains(info.Warning, dir) {
		t.Fatalf("want a warning naming the dir and mode, got %q", info.Warning)
	}
	// Documented choice: an existing directory is not tightened.
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o755 {
		t.Fatalf("existing directory mode changed to %v", st.Mode().Perm())
	}
}

func TestResolveErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(file, env(nil), homeAt("/")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file as state dir: %v", err)
	}
	noHome := func() (string, error) { return "", errors.New("no home") }
	if _, err := resolve("", env(nil), noHome); err == nil || !strings.Contains(err.Error(), "state_dir") {
		t.Fatalf("no home: %v", err)
	}
}

func TestResolvePublicUsesEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sd")
	t.Setenv("STATE_DIRECTORY", dir)
	got, err := Resolve("")
	if err != nil || got != dir {
		t.Fatalf("Resolve = %q, %v; want %q", got, err, dir)
	}
}
