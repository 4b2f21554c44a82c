package statedir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockSecondFails(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	l, err := Lock(dir, Holder{RunID: "run-one", Command: "apply", StartedAt: start})
	if err != nil {
		t.Fatal(err)
	}

	// A second Lock opens a new file description: flock must refuse it even
	// in the same process.
	_, err = Lock(dir, Holder{RunID: "run-two", Command: "apply"})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil {
		t.Fatalf("want a *LockedError with the holder, got %#v", err)
	}
	if le.Holder.PID != os.Getpid() || le.Holder.RunID != "run-one" {
		t.Fatalf("holder %+v", le.Holder)
	}
	for _, want := range []string{"run-one", `"apply"`, fmt.Sprintf("pid %d", os.Getpid()), "2025-03-04T05:06:07Z", filepath.Join(dir, LockFileName)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	for _, name := range []string{LockFileName, InfoFileName} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, InfoFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("info file left after Unlock: %v", err)
	}
	l2, err := Lock(dir, Holder{RunID: "run-two"})
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	defer l2.Unlock()
}

func TestLockedErrorHolderUnknown(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir, Holder{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	// Info that is garbage must not break the refusal, only its detail.
	if err := os.WriteFile(filepath.Join(dir, InfoFileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir, Holder{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "holder unknown") {
		t.Fatalf("got %v", err)
	}
}

// A lock left behind by a dead process (its info file remains) never blocks.
func TestStaleInfoDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	if err := writeInfo(filepath.Join(dir, InfoFileName), Holder{PID: 999999999, RunID: "dead"}); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(dir, Holder{RunID: "alive"})
	if err != nil {
		t.Fatalf("Lock with stale info: %v", err)
	}
	defer l.Unlock()
}

const holderEnv = "STATEDIR_TEST_HOLD_DIR"

// TestHelperHolder is not a test: run as a child process with holderEnv
// set, it takes the lock, prints "locked", and holds it until stdin closes.
func TestHelperHolder(t *testing.T) {
	dir := os.Getenv(holderEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	l, err := Lock(dir, Holder{RunID: "child-run", Command: "schedule"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	if err := l.Unlock(); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// startHolder starts a child process holding the lock on dir.
func startHolder(t *testing.T, dir string) (*exec.Cmd, *os.File) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	t.Cleanup(func() {
		w.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd, w
}

func TestLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd, release := startHolder(t, dir)

	_, err := Lock(dir, Holder{RunID: "parent"})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while child holds it: %v", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", cmd.Process.Pid), "child-run", `"schedule"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	release.Close() // the child unlocks and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	l, err := Lock(dir, Holder{RunID: "parent"})
	if err != nil {
		t.Fatalf("Lock after child unlocked: %v", err)
	}
	l.Unlock()
}

func TestLockReleasedWhenHolderKilled(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHolder(t, dir)
	if _, err := Lock(dir, Holder{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while child holds it: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The child's info file is still there, but the kernel dropped its lock.
	if _, err := os.Stat(filepath.Join(dir, InfoFileName)); err != nil {
		t.Fatalf("expected the killed child's info to remain: %v", err)
	}
	l, err := Lock(dir, Holder{RunID: "after-kill"})
	if err != nil {
		t.Fatalf("Lock after SIGKILL of the holder: %v", err)
	}
	defer l.Unlock()
	if h := readHolder(filepath.Join(dir, InfoFileName)); h == nil || h.RunID != "after-kill" {
		t.Fatalf("info not rewritten by the new holder: %+v", h)
	}
}
