package journal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	dsync "github.com/duosync/duosync/sync"
)

const crashEnv = "JOURNAL_TEST_CRASH_DB"

// TestHelperWriter is not a test: run as a child process with crashEnv set,
// it begins run "child" and journals enroll actions for ever, printing
// "s ID" once ActionStarted has returned and "f ID" once ActionFinished has,
// until it is killed.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	j, err := Open(path)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	if err := j.BeginRun(ctx, Run{ID: "child", Mode: "apply", Command: "apply"}); err != nil {
		fail(err)
	}
	fmt.Println("begun")
	for i := 0; ; i++ {
		id, err := j.ActionStarted(ctx, "child", dsync.JournalAction{Kind: KindEnroll, Username: fmt.Sprintf("u%d@x", i)})
		if err != nil {
			fail(err)
		}
		fmt.Println("s", id)
		if i%2 == 0 { // leave every other one unfinished, as in-flight calls
			if err := j.ActionFinished(ctx, id, ResultOK, ""); err != nil {
				fail(err)
			}
			fmt.Println("f", id)
		}
	}
}

// The child is killed with SIGKILL at a random moment; every action it was
// told was journaled is in the file, which opens cleanly, and the run is
// then marked crashed. While the child writes, this process reads the same
// file through its own handle, as `duosync history` beside the daemon.
func TestSurvivesSIGKILL(t *testing.T) {
	for round := 0; round < 3; round++ {
		path := t.TempDir() + "/" + FileName
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "begun" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q", lines.Text())
		}

		reader, err := Open(path)
		if err != nil {
			t.Fatalf("open beside a writing process: %v", err)
		}
		started, finished := map[int64]bool{}, map[int64]bool{}
		killAt := 10 + rand.IntN(100)
		for n := 0; n < killAt && lines.Scan(); n++ {
			kind, idText, _ := strings.Cut(lines.Text(), " ")
			id, err := strconv.ParseInt(idText, 10, 64)
			if err != nil {
				t.Fatalf("child said %q", lines.Text())
			}
			if kind == "s" {
				started[id] = true
			} else {
				finished[id] = true
			}
			if n == killAt/2 {
				runs, err := reader.Runs(context.Background(), 0)
				if err != nil || len(runs) != 1 || runs[0].Status != StatusRunning {
					t.Fatalf("reader during writes: %+v, %v", runs, err)
				}
			}
		}
		reader.Close()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		j, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: open after SIGKILL: %v", round, err)
		}
		ctx := context.Background()
		var check string
		if err := j.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check: %q, %v", check, err)
		}
		n, err := j.MarkCrashed(ctx)
		if err != nil || n != 1 {
			t.Fatalf("MarkCrashed = %d, %v", n, err)
		}
		acts, err := j.Actions(ctx, "child")
		if err != nil {
			t.Fatal(err)
		}
		stored := map[int64]string{}
		var users []string
		for _, a := range acts {
			stored[a.ID] = a.Result
			users = append(users, a.Username)
		}
		for id := range started {
			if _, ok := stored[id]; !ok {
				t.Errorf("round %d: started action %d lost", round, id)
			}
		}
		for id := range finished {
			if stored[id] != ResultOK {
				t.Errorf("round %d: finished action %d has result %q", round, id, stored[id])
			}
		}
		// Every journaled enroll, finished or not, counts as maybe sent.
		hist, err := j.Enrollments(ctx, users)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != len(acts) {
			t.Errorf("round %d: %d users with enrollment history, want %d", round, len(hist), len(acts))
		}
		j.Close()
	}
}
