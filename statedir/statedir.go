// Package statedir finds duosync's state directory (journal, lock, reports)
// and takes the lock that keeps two runs from overlapping.
//
// The lock is an flock(2) on DIR/duosync.lock, not a PID file: the kernel
// releases it when the holding process exits for any reason, SIGKILL
// included, so a stale lock can never block the next run.
package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Info says which state directory was chosen and why, with anything an
// operator should be told about it.
type Info struct {
	Path    string // absolute path
	From    string // "state_dir", "$STATE_DIRECTORY", "$XDG_STATE_HOME" or "home"
	Created bool   // the directory did not exist and was created 0700
	// Warning is non-empty when an existing directory is accessible by its
	// group or by others. duosync does not tighten it (an administrator may
	// share the reports with a team on purpose, and systemd resets the mode
	// of a StateDirectory= at every start anyway); the files duosync creates
	// are 0600 regardless.
	Warning string
}

// Resolve picks the state directory: configured (the state_dir setting) if
// set, else $STATE_DIRECTORY (systemd; several colon-separated paths may be
// given, the first is used), else $XDG_STATE_HOME/duosync, else
// ~/.local/state/duosync. It creates the directory 0700 when missing.
func Resolve(configured string) (string, error) {
	info, err := ResolveInfo(configured)
	return info.Path, err
}

// ResolveInfo is Resolve with the details: where the path came from, whether
// it was created, and a warning when it is group or world accessible.
func ResolveInfo(configured string) (Info, error) {
	return resolve(configured, os.Getenv, os.UserHomeDir)
}

func resolve(configured string, getenv func(string) string, home func() (string, error)) (Info, error) {
	path, from, err := choose(configured, getenv, home)
	if err != nil {
		return Info{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("state directory %q (from %s): %w", path, from, err)
	}
	info := Info{Path: abs, From: from}

	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return Info{}, fmt.Errorf("create state directory %q (from %s): %w", abs, from, err)
		}
		// MkdirAll is subject to the umask, which can only remove bits; an
		// explicit chmod makes the mode exactly 0700 regardless.
		if err := os.Chmod(abs, 0o700); err != nil {
			return Info{}, fmt.Errorf("set mode of state directory %q: %w", abs, err)
		}
		info.Created = true
		return info, nil
	case err != nil:
		return Info{}, fmt.Errorf("state directory %q (from %s): %w", abs, from, err)
	case !st.IsDir():
		return Info{}, fmt.Errorf("state directory %q (from %s) is not a directory", abs, from)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		info.Warning = fmt.Sprintf("state directory %s has mode %#o: it is accessible by group or others (duosync creates it 0700; consider chmod 700)", abs, perm)
	}
	return info, nil
}

func choose(configured string, getenv func(string) string, home func() (string, error)) (path, from string, err error) {
	if configured = strings.TrimSpace(configured); configured != "" {
		if rest, ok := strings.CutPrefix(configured, "~/"); ok {
			h, err := home()
			if err != nil {
				return "", "", fmt.Errorf("state_dir %q: cannot expand ~: %w", configured, err)
			}
			configured = filepath.Join(h, rest)
		}
		return configured, "state_dir", nil
	}
	// systemd sets STATE_DIRECTORY to the StateDirectory= paths, colon-separated.
	if v := getenv("STATE_DIRECTORY"); v != "" {
		first, _, _ := strings.Cut(v, ":")
		if first != "" {
			return first, "$STATE_DIRECTORY", nil
		}
	}
	// The XDG base directory spec says a relative value is invalid and must be ignored.
	if v := getenv("XDG_STATE_HOME"); v != "" && filepath.IsAbs(v) {
		return filepath.Join(v, "duosync"), "$XDG_STATE_HOME", nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", "", fmt.Errorf("no state directory: set state_dir, $STATE_DIRECTORY or $XDG_STATE_HOME (home directory unknown: %v)", err)
	}
	return filepath.Join(h, ".local", "state", "duosync"), "home", nil
}
