package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duosync/duosync/duo/duotest"
)

// The end-to-end tests run the real binary, built once by TestMain, against
// emulators started as their own processes, exactly as a user would.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "duosync-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "duosync")
	cmd := exec.Command("go", "build", "-race", "-o", binPath, ".")
	if !raceEnabled {
		cmd = exec.Command("go", "build", "-o", binPath, ".")
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build duosync:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// duoEmu is a `duosync emulate duo` process.
type duoEmu struct {
	Host   string `json:"host"`
	IKey   string `json:"ikey"`
	SKey   string `json:"skey"`
	CAFile string `json:"ca_file"`
	cmd    *exec.Cmd
	stderr *lockedBuffer
	client *http.Client
}

// startDuo starts the Duo emulator as a process and reads its ready line.
func startDuo(t *testing.T, args ...string) *duoEmu {
	t.Helper()
	var e duoEmu
	line, cmd, stderr := startProcess(t, append([]string{"emulate", "duo"}, args...), nil)
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("emulate duo ready line %q: %v", line, err)
	}
	e.cmd, e.stderr = cmd, stderr
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		t.Fatalf("emulator CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &e
}

// startProcess runs duosync with args, waits for the first stdout line and
// stops the process (SIGTERM) when the test ends.
func startProcess(t *testing.T, args []string, env []string) ([]byte, *exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("%v exited before its ready line; stderr:\n%s", args, stderr)
		}
		return line, cmd, stderr
	case <-time.After(30 * time.Second):
		t.Fatalf("%v: no ready line after 30s; stderr:\n%s", args, stderr)
	}
	return nil, nil, nil
}

func (e *duoEmu) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := e.client.Get("https://" + e.Host + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (e *duoEmu) state(t *testing.T) duotest.State {
	var s duotest.State
	e.getJSON(t, "/_emulator/state", &s)
	return s
}

func (e *duoEmu) stats(t *testing.T) duotest.Stats {
	var s duotest.Stats
	e.getJSON(t, "/_emulator/stats", &s)
	return s
}

// env returns the environment that points duosync at this emulator; the
// secret key goes through the environment, never argv.
func (e *duoEmu) env() []string {
	return []string{"DUO_HOST=" + e.Host, "DUO_IKEY=" + e.IKey, "DUO_SKEY=" + e.SKey, "DUO_CA_FILE=" + e.CAFile}
}

// result is one finished duosync process.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runBin runs duosync to completion with extra environment variables.
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run duosync %v: %v", args, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// cleanEnv is the test's environment without anything that would point
// duosync elsewhere.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DUO") || strings.HasPrefix(k, "SN_") || strings.HasPrefix(k, "SMTP_") || k == "STATE_DIRECTORY" || k == "XDG_STATE_HOME" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// writeFile writes a test file and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSeed writes the demo's Duo seed as JSON for --seed.
func writeSeed(t *testing.T, dir string) string {
	t.Helper()
	data, err := json.Marshal(demoSeed())
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "seed.json", string(data))
}

// repoFile is a file at the repository root.
func repoFile(name string) string { return filepath.Join("..", "..", name) }

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
