package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/duo/duotest"
)

// The Duo emulator runs in a child process (this test binary, re-executed)
// so that its 100,000 users and its HTTP serving do not count in the peak
// memory measured for duosync and the baseline, which run in this process.
const childEnv = "DUOSYNC_BENCH_EMULATOR"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := runEmulatorChild(cfg, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench emulator:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childConfig is what the parent asks of the child, passed as JSON in the
// environment (never a secret: the child makes its own keys).
type childConfig struct {
	Scale Scale  `json:"scale"`
	Dir   string `json:"dir"` // where the child writes the requests CSV and scenario.json
}

// readyLine is the emulator's ready line (DESIGN.md): how to reach it.
type readyLine struct {
	Host   string `json:"host"`
	IKey   string `json:"ikey"`
	SKey   string `json:"skey"`
	CAFile string `json:"ca_file"`
}

// runEmulatorChild starts the emulator, shapes the account (the share of
// unenrolled users), writes the scenario from the emulator's own state,
// resets the counters, prints the ready line and serves until stdin closes.
func runEmulatorChild(cfgJSON string, stdin io.Reader, stdout io.Writer) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("%s: %w", childEnv, err)
	}
	sc := cfg.Scale
	srv, err := duotest.NewServer(duotest.Options{
		GenerateUsers: sc.Users, GenerateGroups: sc.Groups, GenerateSeed: sc.Seed, Latency: sc.Latency,
	})
	if err != nil {
		return err
	}
	defer srv.Close()

	st := srv.State()
	// The generator leaves about 15% unenrolled; the scenario wants
	// sc.UnenrolledPct, so the surplus finishes enrollment.
	var unenrolled []int
	for i, u := range st.Users {
		if !u.IsEnrolled {
			unenrolled = append(unenrolled, i)
		}
	}
	if want := sc.Users * sc.UnenrolledPct / 100; len(unenrolled) > want {
		for _, i := range unenrolled[want:] {
			if err := srv.SetUserEnrolled(st.Users[i].Username, true); err != nil {
				return err
			}
			st.Users[i].IsEnrolled = true
		}
	}

	scen, err := buildScenario(st, sc, rand.New(rand.NewPCG(uint64(sc.Seed), 2)))
	if err != nil {
		return err
	}
	scen.CSV = filepath.Join(cfg.Dir, "sc_req_item.csv")
	if err := writeRequestsCSV(scen.CSV, scen.Requests); err != nil {
		return err
	}
	b, err := json.Marshal(scen)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "scenario.json"), b, 0o600); err != nil {
		return err
	}

	srv.ResetStats() // the setup above is not the benchmark's
	if _, err := stdout.Write(srv.ReadyLine()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin) // the parent closes stdin to stop us
	return nil
}

// emulator is the parent's handle on a child emulator.
type emulator struct {
	readyLine
	Scenario Scenario

	cmd    *exec.Cmd
	stdin  io.Closer
	client *http.Client // for the unsigned /_emulator endpoints
}

// startEmulator starts a child emulator for sc and waits for its ready line.
func startEmulator(tb testing.TB, sc Scale) *emulator {
	tb.Helper()
	e, err := launchEmulator(tb.TempDir(), sc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.stop)
	return e
}

func launchEmulator(dir string, sc Scale) (*emulator, error) {
	cfg, err := json.Marshal(childConfig{Scale: sc, Dir: dir})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	e := &emulator{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("emulator gave no ready line: %v: %s", err, stderr.String())
	}
	if err := json.Unmarshal(line, &e.readyLine); err != nil || e.Host == "" {
		e.stop()
		return nil, fmt.Errorf("emulator ready line is not what DESIGN.md says (%v)", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
	if err == nil {
		err = json.Unmarshal(raw, &e.Scenario)
	}
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("emulator scenario: %w", err)
	}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("emulator CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		e.stop()
		return nil, errors.New("emulator CA file holds no certificate")
	}
	e.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return e, nil
}

// stop closes the child's stdin and waits for it to exit.
func (e *emulator) stop() {
	if e.cmd == nil {
		return
	}
	_ = e.stdin.Close()
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
	e.cmd = nil
}

// inspect calls an unsigned /_emulator endpoint and decodes its answer.
func (e *emulator) inspect(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+e.Host+path, nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	return nil
}

func (e *emulator) Stats(ctx context.Context) (duotest.Stats, error) {
	var s duotest.Stats
	return s, e.inspect(ctx, http.MethodGet, "/_emulator/stats", &s)
}

func (e *emulator) ResetStats(ctx context.Context) error {
	var s duotest.Stats
	return e.inspect(ctx, http.MethodDelete, "/_emulator/stats", &s)
}

func (e *emulator) State(ctx context.Context) (duotest.State, error) {
	var s duotest.State
	return s, e.inspect(ctx, http.MethodGet, "/_emulator/state", &s)
}
