// Package testenv starts the real external programs duosync's tests talk to.
// Today that is mailpit, an SMTP server with an HTTP API to read what it
// received.
package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// MailpitModule is the mailpit version the tests use.
const MailpitModule = "github.com/axllent/mailpit@v1.33.1"

// MailpitOptions select a mailpit variant.
type MailpitOptions struct {
	// TLS is "" (plain SMTP), "starttls" (STARTTLS required) or "tls"
	// (implicit TLS). The TLS variants use a certificate for 127.0.0.1
	// signed by a CA generated for the test: MailpitServer.CAFile.
	TLS string
	// Users, when set, are the only accepted SMTP credentials
	// (user → password); otherwise any credentials, or none, are accepted.
	Users map[string]string
	// SMTPAddr fixes the SMTP address (127.0.0.1:PORT), e.g. to start
	// mailpit where a client already failed to connect.
	SMTPAddr string
}

// MailpitServer is a running mailpit.
type MailpitServer struct {
	SMTPAddr string // 127.0.0.1:PORT
	APIURL   string // http://127.0.0.1:PORT
	CAFile   string // the CA to trust for the TLS variants, "" otherwise

	cmd    *exec.Cmd
	done   chan struct{}
	stderr *bytes.Buffer
	once   sync.Once
}

// Mailpit starts a plain-SMTP mailpit that accepts any credentials (PLAIN
// and LOGIN included, over the unencrypted loopback connection) and stops it
// when the test ends.
func Mailpit(t testing.TB) *MailpitServer {
	t.Helper()
	return MailpitWith(t, MailpitOptions{})
}

// MailpitWith starts a mailpit variant; see MailpitOptions.
func MailpitWith(t testing.TB, opts MailpitOptions) *MailpitServer {
	t.Helper()
	bin := MailpitBinary(t)
	dir := t.TempDir()
	var lastErr error
	// A free port found by listening and closing can be taken again before
	// mailpit binds it; a few attempts make that race harmless.
	for attempt := 0; attempt < 3; attempt++ {
		m, err := startMailpit(bin, dir, opts)
		if err == nil {
			t.Cleanup(m.Stop)
			return m
		}
		lastErr = err
		if opts.SMTPAddr != "" {
			break
		}
	}
	t.Fatalf("start mailpit: %v", lastErr)
	return nil
}

func startMailpit(bin, dir string, opts MailpitOptions) (*MailpitServer, error) {
	smtpAddr := opts.SMTPAddr
	if smtpAddr == "" {
		smtpAddr = freeAddr()
	}
	httpAddr := freeAddr()
	args := []string{
		"--smtp", smtpAddr,
		"--listen", httpAddr,
		"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", time.Now().UnixNano())),
		"--disable-version-check",
		"--smtp-disable-rdns",
		"--quiet",
	}
	if opts.Users == nil {
		args = append(args, "--smtp-auth-accept-any")
	} else {
		path := filepath.Join(dir, "smtp-users")
		if err := os.WriteFile(path, []byte(htpasswd(opts.Users)), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--smtp-auth-file", path)
	}
	m := &MailpitServer{SMTPAddr: smtpAddr, APIURL: "http://" + httpAddr, done: make(chan struct{}), stderr: &bytes.Buffer{}}
	switch opts.TLS {
	case "":
		args = append(args, "--smtp-auth-allow-insecure")
	case "starttls", "tls":
		ca, cert, key, err := writeTestCerts(dir)
		if err != nil {
			return nil, fmt.Errorf("test certificates: %w", err)
		}
		m.CAFile = ca
		args = append(args, "--smtp-tls-cert", cert, "--smtp-tls-key", key)
		if opts.TLS == "starttls" {
			args = append(args, "--smtp-require-starttls")
		} else {
			args = append(args, "--smtp-require-tls")
		}
	default:
		return nil, fmt.Errorf("unknown TLS variant %q", opts.TLS)
	}

	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout = io.Discard
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	if err := m.waitReady(20 * time.Second); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// waitReady waits until both the HTTP API and the SMTP port answer.
func (m *MailpitServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("mailpit exited early: %s", strings.TrimSpace(m.stderr.String()))
		default:
		}
		resp, err := client.Get(m.APIURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c, err := net.DialTimeout("tcp", m.SMTPAddr, time.Second); err == nil {
					c.Close()
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("mailpit not ready after %s: %s", timeout, strings.TrimSpace(m.stderr.String()))
}

// Stop stops mailpit and waits for it to exit. It is safe to call twice.
func (m *MailpitServer) Stop() {
	m.once.Do(func() {
		if m.cmd.Process != nil {
			_ = m.cmd.Process.Signal(os.Interrupt)
		}
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("testenv: no free port on 127.0.0.1: %v", err))
	}
	defer l.Close()
	return l.Addr().String()
}

// FreeAddr returns a 127.0.0.1 address nothing listens on right now.
func FreeAddr() string { return freeAddr() }

// htpasswd writes users in the {SHA} format mailpit's auth file accepts.
func htpasswd(users map[string]string) string {
	var b strings.Builder
	for u, p := range users {
		sum := sha1.Sum([]byte(p))
		fmt.Fprintf(&b, "%s:{SHA}%s\n", u, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return b.String()
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// MailpitBinary returns the path of a mailpit binary: on PATH, in GOBIN or
// GOPATH/bin, or else installed there with `go install` (once, under a file
// lock, so parallel test binaries do not build it twice).
func MailpitBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findOrInstallMailpit() })
	if binErr != nil {
		t.Fatalf("mailpit is needed for this test: %v (install it with `go install %s`)", binErr, MailpitModule)
	}
	return binPath
}

func findOrInstallMailpit() (string, error) {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	binDir, err := goBinDir()
	if err != nil {
		return "", err
	}
	target := filepath.Join(binDir, "mailpit")
	if isExecutable(target) {
		return target, nil
	}
	lock := flock.New(filepath.Join(os.TempDir(), "duosync-mailpit-install.lock"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := lock.TryLockContext(ctx, 200*time.Millisecond); err != nil {
		return "", fmt.Errorf("lock for installing mailpit: %w", err)
	}
	defer lock.Unlock()
	if isExecutable(target) { // another test binary installed it meanwhile
		return target, nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", MailpitModule)
	// Outside any module, and with GOFLAGS of the test run (-mod=...) unset.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOBIN="+binDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", MailpitModule, err, out)
	}
	if !isExecutable(target) {
		return "", fmt.Errorf("go install %s did not produce %s", MailpitModule, target)
	}
	return target, nil
}

// goBinDir is where `go install` puts binaries.
func goBinDir() (string, error) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	// One line per variable, GOBIN first; an unset GOBIN is an empty line.
	lines := strings.Split(string(out), "\n")
	if len(lines) < 2 {
		return "", fmt.Errorf("go env: unexpected output %q", out)
	}
	if gobin := strings.TrimSpace(lines[0]); gobin != "" {
		return gobin, nil
	}
	gopath := strings.TrimSpace(lines[1])
	if gopath == "" {
		return "", errors.New("go env: neither GOBIN nor GOPATH is set")
	}
	return filepath.Join(filepath.SplitList(gopath)[0], "bin"), nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Address is a mail address as mailpit's API gives it.
type Address struct {
	Name    string
	Address string
}

// MessageSummary is one entry of GET /api/v1/messages.
type MessageSummary struct {
	ID          string
	MessageID   string
	From        *Address
	To          []Address
	Cc          []Address
	Bcc         []Address
	Subject     string
	Attachments int
}

// Attachment is an attachment of a message.
type Attachment struct {
	PartID      string
	FileName    string
	ContentType string
	Size        uint64
}

// Message is GET /api/v1/message/{ID}.
type Message struct {
	ID          string
	MessageID   string
	From        *Address
	To          []Address
	Cc          []Address
	Bcc         []Address
	Subject     string
	Username    string // the SMTP AUTH user, "" when the client did not authenticate
	Text        string
	HTML        string
	Attachments []Attachment
}

// Messages returns the messages received, newest first.
func (m *MailpitServer) Messages(t testing.TB) []MessageSummary {
	t.Helper()
	var out struct {
		Messages []MessageSummary `json:"messages"`
	}
	m.getJSON(t, "/api/v1/messages", &out)
	return out.Messages
}

// WaitMessages waits until at least n messages arrived and returns them.
func (m *MailpitServer) WaitMessages(t testing.TB, n int, timeout time.Duration) []MessageSummary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := m.Messages(t)
		if len(msgs) >= n || time.Now().After(deadline) {
			if len(msgs) < n {
				t.Fatalf("mailpit: %d messages after %s, want %d", len(msgs), timeout, n)
			}
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Message returns one message, parsed by mailpit.
func (m *MailpitServer) Message(t testing.TB, id string) Message {
	t.Helper()
	var msg Message
	m.getJSON(t, "/api/v1/message/"+id, &msg)
	return msg
}

// Headers returns a message's headers.
func (m *MailpitServer) Headers(t testing.TB, id string) map[string][]string {
	t.Helper()
	var h map[string][]string
	m.getJSON(t, "/api/v1/message/"+id+"/headers", &h)
	return h
}

// Part returns the decoded bytes of one part (an attachment's content).
func (m *MailpitServer) Part(t testing.TB, id, partID string) []byte {
	t.Helper()
	return m.get(t, "/api/v1/message/"+id+"/part/"+partID)
}

// Raw returns the message as received, headers and MIME body.
func (m *MailpitServer) Raw(t testing.TB, id string) []byte {
	t.Helper()
	return m.get(t, "/api/v1/message/"+id+"/raw")
}

func (m *MailpitServer) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(m.get(t, path), v); err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
}

func (m *MailpitServer) get(t testing.TB, path string) []byte {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(m.APIURL + path)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body
}

// writeTestCerts writes a CA and a server certificate for 127.0.0.1 and
// localhost, valid for a day, and returns the paths of the CA, the
// certificate and its key.
func writeTestCerts(dir string) (caFile, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "duosync test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	caFile = filepath.Join(dir, "ca.pem")
	certFile = filepath.Join(dir, "smtp-cert.pem")
	keyFile = filepath.Join(dir, "smtp-key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
}
