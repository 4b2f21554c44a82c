package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/duo/duotest"
)

// rssBound is the safety net on the binary's peak resident size (it is never
// built with the race detector).
const rssBound = 300 << 20

// binPath is the duosync binary TestMain builds.
var binPath string

func buildBinary() (func(), error) {
	dir, err := os.MkdirTemp("", "duosync-hostile-")
	if err != nil {
		return func() {}, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	binPath = filepath.Join(dir, "duosync")
	cmd := exec.Command("go", "build", "-o", binPath, "github.com/duosync/duosync/cmd/duosync")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return cleanup, fmt.Errorf("build duosync: %w", err)
	}
	return cleanup, nil
}

// goodCSV has two approved requests for users the empty emulator lacks, so
// that an apply that got past the config would write to Duo.
const goodCSV = "number,sys_id,approval,state,cat_item,requested_for.user_name,requested_for.email," +
	"requested_for.first_name,requested_for.last_name,requested_for.name,variables.duo_group,sys_updated_on\n" +
	"RITM0000001,a1,Approved,Open,Duo MFA Enrollment,ann,ann@example.com,Ann,A,Ann A,,2026-11-30 14:05:12\n" +
	"RITM0000002,a2,Approved,Open,Duo MFA Enrollment,bob,bob@example.com,Bob,B,Bob B,,2026-11-30 14:05:12\n"

// binRun is one run of the binary against its own Duo emulator.
type binRun struct {
	code           int
	stdout, stderr string
	writes         int64
	took           time.Duration
	maxRSS         int64 // bytes
}

// binEnv is a Duo emulator and a private home and state directory.
type binEnv struct {
	dir string
	emu *duotest.Server
	csv string
}

func newBinEnv(dir string) (*binEnv, error) {
	// 50 users, so that the default max_creates (10%) lets the two
	// creations of goodCSV through: a broken input must be what stops a run.
	emu, err := duotest.NewServer(duotest.Options{GenerateUsers: 50, GenerateSeed: 7})
	if err != nil {
		return nil, err
	}
	return &binEnv{dir: dir, emu: emu, csv: writeFile(dir, "export.csv", goodCSV)}, nil
}

func (e *binEnv) close() { e.emu.Close() }

// run runs duosync with args; the Duo credentials come from the
// environment, the secret key never from argv.
func (e *binEnv) run(args ...string) binRun {
	ctx, cancel := context.WithTimeout(context.Background(), timeBound-time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = e.dir
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + e.dir, "XDG_STATE_HOME=" + filepath.Join(e.dir, "xdg"),
		"DUOSYNC_STATE_DIR=" + filepath.Join(e.dir, "state"), "DUOSYNC_LOG_FORMAT=text",
		"DUO_HOST=" + e.emu.Host(), "DUO_IKEY=" + e.emu.IKey(), "DUO_SKEY=" + e.emu.SKey(), "DUO_CA_FILE=" + e.emu.CAFile(),
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	var peak int64
	err := cmd.Start()
	if err == nil {
		done, result := make(chan struct{}), make(chan int64)
		go func() { result <- watchPeakRSS(cmd.Process.Pid, done) }()
		err = cmd.Wait()
		close(done)
		peak = <-result
	}
	r := binRun{stdout: out.String(), stderr: errb.String(), took: time.Since(start), writes: e.emu.Stats().Writes}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n(run: " + err.Error() + ")"
	}
	r.maxRSS = peak
	return r
}

// watchPeakRSS polls the child's VmHWM (its peak resident size) until done.
// The rusage of a finished child is no use here: on Linux its ru_maxrss
// starts from the parent's size at fork.
func watchPeakRSS(pid int, done <-chan struct{}) int64 {
	var peak int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					var kb int64
					fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
					peak = max(peak, kb<<10)
				}
			}
		}
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}

// refusedRun checks a run that must stop before any Duo write: exit code
// 64 (or 1 where allowed), the parts in stderr, no write, no secret in any
// output, a bounded process size.
func (e *binEnv) refusedRun(r binRun, codes []int, parts ...string) error {
	ok := false
	for _, c := range codes {
		ok = ok || r.code == c
	}
	if !ok {
		return fmt.Errorf("exit %d, want %v; stderr: %s", r.code, codes, clip(r.stderr))
	}
	if r.writes != 0 {
		return fmt.Errorf("%d writes reached Duo", r.writes)
	}
	if r.maxRSS > rssBound {
		return fmt.Errorf("the process grew to %d MB", r.maxRSS>>20)
	}
	if err := wantNoSecret(r.stdout+r.stderr, e.emu.SKey()); err != nil {
		return err
	}
	// The error is stderr's "duosync: ..." line; the log lines around it say
	// what was done (a report written, nothing applied).
	msg := r.stderr
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(line, "duosync: ") {
			msg = line
		}
	}
	return wantErr(errors.New(msg), parts...)
}

// configCase runs apply --yes with a config file holding content.
func configCase(name, what, want, content string, parts ...string) hostileCase {
	return hostileCase{area: "config", name: name, what: what, want: want,
		run: func(dir string) error {
			e, err := newBinEnv(dir)
			if err != nil {
				return err
			}
			defer e.close()
			cfg := writeFile(dir, "duosync.yaml", content)
			r := e.run("apply", "--yes", "-c", cfg, "--source", e.csv)
			return e.refusedRun(r, []int{64}, append([]string{"duosync.yaml"}, parts...)...)
		}}
}

// planCase makes a real plan.json, lets mutate change it, and applies it.
func planCase(name, what, want string, mutate func(plan []byte, dir string) []byte, parts ...string) hostileCase {
	return hostileCase{area: "plan", name: name, what: what, want: want,
		run: func(dir string) error {
			e, err := newBinEnv(dir)
			if err != nil {
				return err
			}
			defer e.close()
			good := filepath.Join(dir, "good.json")
			if r := e.run("plan", "--source", e.csv, "-o", good); r.code != 0 && r.code != 2 {
				return fmt.Errorf("making the plan to break: exit %d: %s", r.code, clip(r.stderr))
			}
			data, err := os.ReadFile(good)
			if err != nil {
				return err
			}
			bad := filepath.Join(dir, "plan.json")
			if err := os.WriteFile(bad, mutate(data, dir), 0o600); err != nil {
				return err
			}
			r := e.run("apply", "--yes", "--source", e.csv, bad)
			return e.refusedRun(r, []int{64, 1}, append([]string{"plan.json"}, parts...)...)
		}}
}

// editJSON decodes a plan, lets edit change it, and encodes it again.
func editJSON(plan []byte, edit func(m map[string]any)) []byte {
	var m map[string]any
	if err := json.Unmarshal(plan, &m); err != nil {
		panic(err)
	}
	edit(m)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}

func actions(m map[string]any) []any {
	p, _ := m["plan"].(map[string]any)
	if p == nil {
		p = m
	}
	a, _ := p["actions"].([]any)
	return a
}

// billionLaughs is a YAML bomb whose anchors sit under keys the config
// knows (groups_by_item takes any item name), referenced where the config
// holds a list: a decoder that expanded aliases would build 9^9 strings.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("mapping:\n  groups_by_item:\n    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "    %s: &%s [", n, n)
		for i := range 9 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	b.WriteString("source:\n  catalog_items: *i\n")
	return b.String()
}

func binaryCases() []hostileCase {
	cs := binaryTable()
	for i := range cs {
		switch cs[i].area + "/" + cs[i].name {
		}
	}
	return cs
}

func binaryTable() []hostileCase {
	return []hostileCase{
		configCase("unknown-key", "a config with a misspelt key (duo.hots)", "exit 64 naming the file, the key and its line",
			"duo:\n  hots: api-x.duosecurity.com\n", "hots", "line 2"),
		configCase("wrong-type", "duo.workers: many (a string where a number belongs)", "exit 64 naming the file, the key and its line",
			"duo:\n  workers: many\n", "line 2", "many"),
		configCase("wrong-type-bool", "policy.enroll: maybe", "exit 64 naming the file and the line",
			"policy:\n  enroll: maybe\n", "line 2", "maybe"),
		configCase("yaml-bomb", "a billion-laughs YAML bomb (nine levels of nine aliases)", "exit 64 at once, without expanding it",
			billionLaughs()),
		configCase("tabs", "a config indented with a tab", "exit 64 naming the file and the line",
			"duo:\n\tworkers: 4\n", "line"),
		configCase("secret-value", "a config with the skey as a value (duo.skey: ...), which duosync refuses",
			"exit 64 naming the key; the value is not echoed",
			"duo:\n  skey: HOSTILEconfigSECRETvalue0000000000000000\n", "skey"),
		configCase("not-a-mapping", "a config that is a YAML list", "exit 64 naming the file",
			"- duo\n- source\n"),
		configCase("two-documents", "a config with a second YAML document after ---", "exit 64 naming the file",
			"duo:\n  workers: 2\n---\nduo:\n  workers: 300\n", "line 3", "second YAML document"),
		configCase("trailing-document-marker-and-bomb", "a config ending in --- followed by a YAML bomb", "exit 64, the second document refused, without expanding it",
			"duo:\n  workers: 2\n---\n"+billionLaughs(), "duosync.yaml"),
		{area: "config", name: "10MB",
			what: "a 10 MB config: comments and a huge catalog_items list, then an unknown key",
			want: "exit 64 naming the key, in bounded time and memory",
			run: func(dir string) error {
				e, err := newBinEnv(dir)
				if err != nil {
					return err
				}
				defer e.close()
				cfg := bigFile(dir, "duosync.yaml", "# a long comment line of filler text for the hostile suite\n", 80_000,
					"source:\n  catalog_items:\n", 1, "    - Duo MFA Enrollment item with a long name\n", 100_000, "bogus_key: 1\n", 1)
				r := e.run("apply", "--yes", "-c", cfg, "--source", e.csv)
				return e.refusedRun(r, []int{64}, "duosync.yaml", "bogus_key")
			}},
		planCase("truncated", "a saved plan cut off halfway", "exit 64 or 1 naming the file; no write",
			func(p []byte, _ string) []byte { return p[:len(p)/2] }),
		planCase("future-version", "a saved plan of format version 99", "refused naming the version; no write",
			func(p []byte, _ string) []byte {
				return editJSON(p, func(m map[string]any) { m["version"] = 99 })
			}, "version 99"),
		planCase("unknown-kind", `a saved plan with an action of kind "delete_user"`, "refused naming the action and its kind; no write",
			func(p []byte, _ string) []byte {
				return editJSON(p, func(m map[string]any) {
					for _, a := range actions(m) {
						a.(map[string]any)["kind"] = "delete_user"
					}
				})
			}, "delete_user"),
		planCase("huge", "a 60 MB saved plan: the real one with 250,000 extra actions for users it never looked up", "refused before decoding (over sync.MaxPlanFileSize), in bounded time and memory; no write",
			func(p []byte, _ string) []byte {
				// Spliced as text: building 400,000 maps would take longer than the run.
				i := bytes.Index(p, []byte(`"actions": [`))
				if i < 0 {
					panic("no actions in the plan")
				}
				i += len(`"actions": [`)
				const n = 250_000
				var b bytes.Buffer
				b.Grow(len(p) + n*240)
				b.Write(p[:i])
				for n := range n {
					fmt.Fprintf(&b, `{"kind":"enroll","username":"mallory%06d@example.com","key":"mallory%06d@example.com","email":"m@example.com","valid_secs":86400,"reason":"padding padding padding padding padding padding padding padding","requests":["RITM0000001"]},`, n, n)
				}
				b.Write(p[i:])
				return b.Bytes()
			}, "larger than the 32 MiB a saved plan can be"),
		planCase("not-json", "an export CSV passed as the plan", "refused as not a duosync plan; no write",
			func(_ []byte, _ string) []byte { return []byte(goodCSV) }, "not a duosync plan"),
		planCase("unknown-field", "a saved plan with an extra field in an action (hand-edited)", "refused naming the field; no write",
			func(p []byte, _ string) []byte {
				return editJSON(p, func(m map[string]any) {
					for _, a := range actions(m) {
						a.(map[string]any)["force_delete"] = true
					}
				})
			}, "force_delete"),
		planCase("user-not-fingerprinted", "a saved plan edited to create a user its fingerprint never read", "refused naming the user and its key; no write",
			func(p []byte, _ string) []byte {
				return editJSON(p, func(m map[string]any) {
					for _, a := range actions(m) {
						a := a.(map[string]any)
						a["username"] = "mallory@example.com"
						if nu, ok := a["new_user"].(map[string]any); ok {
							nu["username"] = "mallory@example.com"
						}
					}
				})
			}, "mallory@example.com", "key"),
	}
}

// TestBinaryControl shows the no-write check can fail: the same run with a
// good config does write to the emulator.
func TestBinaryControl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	e, err := newBinEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	// A trailing --- (an empty second document) is fine.
	cfg := writeFile(e.dir, "duosync.yaml", "---\nduo:\n  workers: 2\n---\n")
	r := e.run("apply", "--yes", "-c", cfg, "--source", e.csv)
	if r.code != 0 || r.writes == 0 {
		t.Fatalf("a good apply: exit %d with %d writes; stderr: %s", r.code, r.writes, clip(r.stderr))
	}
	if err := e.refusedRun(r, []int{0}); err == nil {
		t.Error("refusedRun accepted a run that wrote to Duo")
	}
}
