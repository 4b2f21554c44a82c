package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// LockFileName and InfoFileName are the files Lock uses in the state directory.
const (
	LockFileName = "duosync.lock"
	InfoFileName = "duosync.lock.info"
)

// ErrLocked is wrapped by the error Lock returns when another run holds the
// lock (errors.Is(err, ErrLocked)); the error itself is a *LockedError.
var ErrLocked = errors.New("another duosync run holds the lock")

// Holder describes the run holding the lock, so that a run that finds it
// held can say by whom. Command is the subcommand ("apply", "schedule"),
// never the full argv.
type Holder struct {
	PID       int       `json:"pid"`
	RunID     string    `json:"run_id"`
	Command   string    `json:"command"`
	StartedAt time.Time `json:"started_at"`
	Host      string    `json:"host"`
}

func (h Holder) String() string {
	var parts []string
	parts = append(parts, fmt.Sprintf("pid %d", h.PID))
	if h.Host != "" {
		parts = append(parts, "on host "+h.Host)
	}
	if h.RunID != "" {
		parts = append(parts, "run "+h.RunID)
	}
	if h.Command != "" {
		parts = append(parts, fmt.Sprintf("command %q", h.Command))
	}
	if !h.StartedAt.IsZero() {
		parts = append(parts, "since "+h.StartedAt.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}

// LockedError is the error Lock returns when the lock is held.
type LockedError struct {
	Path   string  // the lock file
	Holder *Holder // nil when the holder could not be identified
}

func (e *LockedError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("%v (%s; holder unknown)", ErrLocked, e.Path)
	}
	return fmt.Sprintf("%v (%s): %s", ErrLocked, e.Path, e.Holder)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// LockFile is a held lock on a state directory. Release it with Unlock.
type LockFile struct {
	fl       *flock.Flock
	infoPath string
}

// Lock takes an exclusive, non-blocking flock on DIR/duosync.lock and records
// holder in DIR/duosync.lock.info. When another run (in this process or any
// other) holds it, Lock returns at once with an error wrapping ErrLocked that
// names the holder. Zero fields of holder are filled in: PID with this
// process's, Host with the hostname, StartedAt with the current time.
//
// The lock file is never deleted: deleting it would let a third run lock a
// new file while a second one still waits on the old one.
func Lock(dir string, holder Holder) (*LockFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock state directory %q: %w", dir, err)
	}
	lockPath := filepath.Join(dir, LockFileName)
	// A new Flock opens its own file descriptor, so a second Lock in the same
	// process conflicts with the first exactly as another process would.
	fl := flock.New(lockPath, flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", lockPath, err)
	}
	infoPath := filepath.Join(dir, InfoFileName)
	if !ok {
		return nil, &LockedError{Path: lockPath, Holder: readHolder(infoPath)}
	}

	if holder.PID == 0 {
		holder.PID = os.Getpid()
	}
	if holder.Host == "" {
		holder.Host, _ = os.Hostname() // best effort: the host is only informative
	}
	if holder.StartedAt.IsZero() {
		holder.StartedAt = time.Now()
	}
	holder.StartedAt = holder.StartedAt.UTC()
	if err := writeInfo(infoPath, holder); err != nil {
		_ = fl.Unlock()
		return nil, err
	}
	return &LockFile{fl: fl, infoPath: infoPath}, nil
}

// Unlock removes the holder information and releases the lock. Calling it
// again is a no-op.
func (l *LockFile) Unlock() error {
	if l == nil || l.fl == nil {
		return nil
	}
	// Remove the info while still holding the lock, so it never describes a
	// run that no longer holds it (except after a crash, which readHolder detects).
	rmErr := os.Remove(l.infoPath)
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	err := l.fl.Unlock()
	l.fl = nil
	if err != nil {
		return fmt.Errorf("unlock %q: %w", l.infoPath, err)
	}
	if rmErr != nil {
		return fmt.Errorf("unlock: remove %q: %w", l.infoPath, rmErr)
	}
	return nil
}

// writeInfo writes the holder atomically (temporary file, then rename), so a
// concurrent reader sees the old content or the new, never half of it.
func writeInfo(path string, h Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("lock info: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write lock info %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write lock info %q: %w", path, err)
	}
	return nil
}

// readHolder reads who holds the lock. The holder writes its info just after
// taking the lock, and a crashed holder leaves stale info behind, so a
// missing, unreadable or dead holder's info is re-read for a short while
// before giving up (nil).
func readHolder(path string) *Holder {
	const attempts, pause = 10, 20 * time.Millisecond
	host, _ := os.Hostname()
	for i := 0; i < attempts; i++ {
		if i > 0 {
			time.Sleep(pause)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var h Holder
		if json.Unmarshal(b, &h) != nil || h.PID <= 0 {
			continue
		}
		if h.Host == host && !processExists(h.PID) {
			continue // stale: left by a holder that died
		}
		return &h
	}
	return nil
}
