package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/admin"
)

func TestParseRateLimit(t *testing.T) {
	good := map[string][2]int{
		"":                            {0, 0},
		"off":                         {0, 0},
		"reads=200/m,writes=300/m":    {200, 300},
		"writes=5/s":                  {0, 300},
		" reads = 120 , writes=600/h": {120, 10},
		"reads=50":                    {50, 0},
	}
	for spec, want := range good {
		r, w, err := parseRateLimit(spec)
		if err != nil || r != want[0] || w != want[1] {
			t.Errorf("parseRateLimit(%q) = %d, %d, %v; want %v", spec, r, w, err, want)
		}
	}
	for _, spec := range []string{"reads", "reads=x/m", "reads=-1/m", "reads=0", "reads=10/d", "deletes=10/m", "reads=10/m;writes=1"} {
		if _, _, err := parseRateLimit(spec); err == nil {
			t.Errorf("parseRateLimit(%q): no error", spec)
		}
	}
}

func TestEmulateDuoBadFlags(t *testing.T) {
	cases := map[string][]string{
		"fault rate":  {"--fault-rate", "2"},
		"rate limit":  {"--rate-limit", "reads=lots"},
		"unknown":     {"--bogus"},
		"seed":        {"--seed", filepath.Join(t.TempDir(), "missing.json")},
		"argument":    {"extra"},
		"negative":    {"--generate-users", "-5"},
		"bad latency": {"--latency", "soon"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"emulate", "duo"}, args...), Env{Stdout: &stdout, Stderr: &stderr})
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if !strings.Contains(stderr.String(), "emulate duo") {
				t.Errorf("stderr does not say what failed: %q", stderr.String())
			}
		})
	}
}

// TestEmulateDuoServes starts the command, reads its one ready line, calls
// it with the official client, and stops it by cancelling the context.
func TestEmulateDuoServes(t *testing.T) {
	const skey = "emulatorSecretKey0123456789abcdefghijklm"
	t.Setenv("DUO_EMULATOR_SKEY", skey)
	seed := filepath.Join(t.TempDir(), "seed.json")
	os.WriteFile(seed, []byte(`{"groups":[{"name":"MFA Users"}],"users":[{"username":"ada@example.com","groups":["MFA Users"]}]}`), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- runEmulateDuo(ctx, []string{"--seed", seed, "--generate-users", "20", "--generate-groups", "2",
			"--ikey", "DITESTTESTTESTTEST00", "--page-cap", "7", "--rate-limit", "reads=1000/m"}, outW, &stderr)
		outW.Close()
	}()

	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v; stderr: %s", err, stderr.String())
	}
	var ready struct {
		Host   string `json:"host"`
		IKey   string `json:"ikey"`
		SKey   string `json:"skey"`
		CAFile string `json:"ca_file"`
	}
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	if ready.IKey != "DITESTTESTTESTTEST00" || ready.SKey != skey || !strings.HasPrefix(ready.Host, "127.0.0.1:") {
		t.Errorf("ready line %+v", ready)
	}
	pem, err := os.ReadFile(ready.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	api := duoapi.NewDuoApi(ready.IKey, ready.SKey, ready.Host, "duosync-test")
	api.SetCustomHTTPClient(&http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}})
	res, err := admin.New(*api).GetUsers()
	if err != nil || res.Stat != "OK" || len(res.Response) != 21 {
		t.Fatalf("GetUsers through the emulator: %v, %+v", err, res)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runEmulateDuo returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not stop when the context was cancelled")
	}
	if _, err := os.Stat(ready.CAFile); !os.IsNotExist(err) {
		t.Errorf("CA file still there after stop: %v", err)
	}
	if strings.Contains(stderr.String(), skey) {
		t.Errorf("secret key on stderr: %s", stderr.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
