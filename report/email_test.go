package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/internal/testenv"
)

func TestSubject(t *testing.T) {
	plan := planReport()
	empty := New("e", ModeApply)
	interrupted := sampleReport()
	interrupted.Interrupted = true
	for _, tc := range []struct {
		r    *Report
		want string
	}{
		{sampleReport(), "duosync APPLY: 7 created, 7 enrolled, 9 added, 1 failed, 1 blocked, 1 conflicts, 1 invalid"},
		{plan, "duosync PLAN: 7 to create, 7 to enroll, 9 to add, 1 blocked, 1 conflicts, 1 invalid"},
		{empty, "duosync APPLY: no changes"},
		{guardReport(), "duosync APPLY: GUARD TRIPPED, nothing written"},
		{interrupted, "duosync APPLY: INTERRUPTED, 7 created, 7 enrolled, 9 added, 1 failed, 1 blocked, 1 conflicts, 1 invalid"},
		{&Report{Mode: "APPLY\r\nBcc: evil@x", Summary: Summary{Created: 1}}, `duosync APPLY\r\nBcc: evil@x: 1 created`},
	} {
		if got := Subject(tc.r); got != tc.want {
			t.Errorf("Subject = %q\n         want %q", got, tc.want)
		}
	}
	// The example of the issue.
	r := New("x", ModeApply)
	r.Summary = Summary{Created: 7, EnrollmentsSent: 7, MembershipsAdded: 9, Failed: 1}
	if got, want := Subject(r), "duosync APPLY: 7 created, 7 enrolled, 9 added, 1 failed"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
}

func TestShouldSend(t *testing.T) {
	quiet := New("q", ModeApply)
	quiet.Summary.InSync = 5
	changed := New("c", ModeApply)
	changed.Summary.Created = 1
	failed := New("f", ModeApply)
	failed.Summary.Failed = 1
	failed.ExitCode = 3
	blocked := New("b", ModeApply)
	blocked.Blocked = []BlockedRow{{Username: "x"}}
	planned := New("p", ModePlan)
	planned.Summary.MembershipsAdded = 2
	planned.ExitCode = 2
	for _, tc := range []struct {
		when string
		r    *Report
		want bool
	}{
		{"", quiet, true}, {"always", quiet, true},
		{"changes", quiet, false}, {"changes", changed, true}, {"changes", failed, true}, {"changes", blocked, false}, {"changes", planned, true},
		{"failures", changed, false}, {"failures", failed, true}, {"failures", guardReport(), true}, {"failures", planned, false},
	} {
		if got := ShouldSend(EmailConfig{When: tc.when}, tc.r); got != tc.want {
			t.Errorf("ShouldSend(when=%q, %s) = %v, want %v", tc.when, tc.r.RunID, got, tc.want)
		}
	}
}

func validConfig() EmailConfig {
	return EmailConfig{Addr: "smtp.example.com:587", From: "duosync@example.com", To: []string{"it@example.com"}}
}

func TestEmailConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		change func(*EmailConfig)
		want   string
	}{
		{func(c *EmailConfig) { c.Addr = "smtp.example.com" }, "report.email.smtp"},
		{func(c *EmailConfig) { c.Addr = "smtp.example.com:0" }, "bad port"},
		{func(c *EmailConfig) { c.TLS = "none" }, "not a loopback"},
		{func(c *EmailConfig) { c.TLS = "ssl" }, "want starttls, tls or none"},
		{func(c *EmailConfig) { c.When = "sometimes" }, "report.email.when"},
		{func(c *EmailConfig) { c.From = "" }, "report.email.from"},
		{func(c *EmailConfig) { c.To = nil }, "no recipient"},
		{func(c *EmailConfig) { c.To = []string{"it@example.com", "a@x\r\nBcc: evil@x"} }, "report.email.to[1]"},
		{func(c *EmailConfig) { c.From = "duosync@example.com\nBcc: evil@x" }, "line break"},
		{func(c *EmailConfig) { c.Password = "p" }, "no user"},
	} {
		c := validConfig()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c, err, tc.want)
		}
	}
	for _, host := range []string{"127.0.0.1:25", "localhost:1025", "[::1]:25", "127.0.0.9:25"} {
		c := validConfig()
		c.Addr, c.TLS = host, TLSNone
		if err := c.Validate(); err != nil {
			t.Errorf("tls none to %s: %v", host, err)
		}
	}
	// Send refuses before connecting.
	c := validConfig()
	c.TLS = TLSNone
	if err := Send(context.Background(), c, sampleReport(), nil); err == nil {
		t.Errorf("Send with tls none to a remote host succeeded")
	}
}

// writeSample writes the sample report to disk, as a run does before mailing.
func writeSample(t *testing.T, r *Report) (Paths, []byte) {
	t.Helper()
	p, err := WriteFiles(t.TempDir(), r)
	if err != nil {
		t.Fatal(err)
	}
	csvData, err := os.ReadFile(p.CSV)
	if err != nil {
		t.Fatal(err)
	}
	return p, csvData
}

func mailpitConfig(m *testenv.MailpitServer) EmailConfig {
	return EmailConfig{
		Addr: m.SMTPAddr, TLS: TLSNone, User: "duosync", Password: "smtp-Secret-42",
		From: "duosync <duosync@example.com>", To: []string{"it-identity@example.com", "Security Team <security@example.com>"},
		Timeout: 10 * time.Second,
	}
}

func TestSendThroughMailpit(t *testing.T) {
	t.Parallel()
	m := testenv.Mailpit(t)
	r := sampleReport()
	_, csvData := writeSample(t, r)
	if err := Send(context.Background(), mailpitConfig(m), r, csvData); err != nil {
		t.Fatal(err)
	}
	msgs := m.WaitMessages(t, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	msg := m.Message(t, msgs[0].ID)
	if msg.Subject != Subject(r) {
		t.Errorf("subject %q, want %q", msg.Subject, Subject(r))
	}
	if msg.Username != "duosync" {
		t.Errorf("mailpit saw SMTP user %q, want the client to have authenticated as duosync", msg.Username)
	}
	if msg.From == nil || msg.From.Address != "duosync@example.com" {
		t.Errorf("from %+v", msg.From)
	}
	var to []string
	for _, a := range msg.To {
		to = append(to, a.Address)
	}
	if !slices.Equal(to, []string{"it-identity@example.com", "security@example.com"}) {
		t.Errorf("to %v", to)
	}
	if len(msg.Bcc) != 0 || len(msg.Cc) != 0 {
		t.Errorf("unexpected cc/bcc: %v %v", msg.Cc, msg.Bcc)
	}

	// The attachment is the CSV on disk, byte for byte.
	if len(msg.Attachments) != 1 {
		t.Fatalf("%d attachments, want 1", len(msg.Attachments))
	}
	att := msg.Attachments[0]
	if att.FileName != AttachmentName(r) || !strings.HasPrefix(att.ContentType, "text/csv") {
		t.Errorf("attachment %q %q", att.FileName, att.ContentType)
	}
	if got := m.Part(t, msg.ID, att.PartID); !bytes.Equal(got, csvData) {
		t.Errorf("attachment differs from the CSV on disk (%d vs %d bytes)", len(got), len(csvData))
	}

	// The MIME structure: mixed(alternative(text, html), csv), with the
	// parts exactly as rendered.
	text, html := string(render(t, WriteText, r)), string(render(t, WriteHTML, r))
	parts := mimeParts(t, m.Raw(t, msg.ID))
	if !slices.Equal(parts.types, []string{"multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/csv"}) {
		t.Errorf("MIME structure %v", parts.types)
	}
	if normalizeNewlines(parts.bodies["text/plain"]) != normalizeNewlines(text) {
		t.Errorf("text part differs from WriteText:\n%s", parts.bodies["text/plain"])
	}
	if normalizeNewlines(parts.bodies["text/html"]) != normalizeNewlines(html) {
		t.Errorf("HTML part differs from WriteHTML")
	}
	if !strings.Contains(msg.Text, "NEEDS A HUMAN") || !strings.Contains(msg.HTML, "Failed actions (1)") {
		t.Errorf("mailpit does not see the text and HTML bodies")
	}
}

type parsedMIME struct {
	types  []string
	bodies map[string]string
}

// mimeParts walks a raw message depth first, decoding leaf bodies.
func mimeParts(t *testing.T, raw []byte) parsedMIME {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := parsedMIME{bodies: map[string]string{}}
	var walk func(ctype, cte string, body io.Reader)
	walk = func(ctype, cte string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("content type %q: %v", ctype, err)
		}
		out.types = append(out.types, mt)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			}
		}
		var data []byte
		switch strings.ToLower(cte) {
		case "base64":
			data, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, newlineStripper{body}))
		case "quoted-printable":
			data, err = io.ReadAll(quotedprintable.NewReader(body))
		default:
			data, err = io.ReadAll(body)
		}
		if err != nil {
			t.Fatalf("decode %s part: %v", mt, err)
		}
		out.bodies[mt] = string(data)
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return out
}

func normalizeNewlines(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

// newlineStripper drops line breaks so base64 decodes across lines.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	c, err := n.r.Read(p)
	j := 0
	for _, b := range p[:c] {
		if b != '\r' && b != '\n' {
			p[j] = b
			j++
		}
	}
	return j, err
}

func TestSendSTARTTLSVerifiesTheServer(t *testing.T) {
	t.Parallel()
	m := testenv.MailpitWith(t, testenv.MailpitOptions{TLS: "starttls"})
	r := sampleReport()
	_, csvData := writeSample(t, r)
	cfg := mailpitConfig(m)
	cfg.TLS = TLSStartTLS

	// Without the test's CA the certificate cannot be verified: no send.
	err := Send(context.Background(), cfg, r, csvData)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("send to an unverifiable server: %v, want a certificate error", err)
	}
	cfg.CAFile = m.CAFile
	if err := Send(context.Background(), cfg, r, csvData); err != nil {
		t.Fatal(err)
	}
	msgs := m.WaitMessages(t, 1, 10*time.Second)
	if len(msgs) != 1 || msgs[0].Subject != Subject(r) {
		t.Errorf("messages %+v", msgs)
	}
}

func TestSendImplicitTLS(t *testing.T) {
	t.Parallel()
	m := testenv.MailpitWith(t, testenv.MailpitOptions{TLS: "tls"})
	r := sampleReport()
	_, csvData := writeSample(t, r)
	cfg := mailpitConfig(m)
	cfg.TLS, cfg.CAFile = TLSImplicit, m.CAFile
	if err := Send(context.Background(), cfg, r, csvData); err != nil {
		t.Fatal(err)
	}
	if msgs := m.WaitMessages(t, 1, 10*time.Second); len(msgs) != 1 {
		t.Errorf("%d messages", len(msgs))
	}
}

// With the relay down, Send fails at once (connection refused, not a
// timeout); the same send succeeds once the relay is up.
func TestSendSMTPDownThenUp(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr()
	r := sampleReport()
	_, csvData := writeSample(t, r)
	cfg := EmailConfig{Addr: addr, TLS: TLSNone, From: "duosync@example.com", To: []string{"it@example.com"}, Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Send(ctx, cfg, r, csvData)
	if err == nil {
		t.Fatal("Send with no SMTP server succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("Send waited for a timeout instead of failing: %v", err)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), r.RunID) {
		t.Errorf("error %q does not name the relay and the run", err)
	}

	m := testenv.MailpitWith(t, testenv.MailpitOptions{SMTPAddr: addr})
	if err := Send(context.Background(), cfg, r, csvData); err != nil {
		t.Fatalf("Send once the relay is up: %v", err)
	}
	if msgs := m.WaitMessages(t, 1, 10*time.Second); len(msgs) != 1 {
		t.Errorf("%d messages", len(msgs))
	}
}

// A relay that accepts the connection and never answers cannot hang a run:
// cfg.Timeout bounds it.
func TestSendSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the test ends
		}
	}()
	cfg := EmailConfig{Addr: l.Addr().String(), TLS: TLSNone, From: "d@example.com", To: []string{"it@example.com"}, Timeout: 200 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- Send(context.Background(), cfg, sampleReport(), nil) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Send to a silent server succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send hangs on a silent server")
	}
}

func TestSendAuthFailureHidesPassword(t *testing.T) {
	t.Parallel()
	const password = "Hunter2-very-Secret"
	m := testenv.MailpitWith(t, testenv.MailpitOptions{Users: map[string]string{"duosync": "the-right-one"}})
	cfg := mailpitConfig(m)
	cfg.Password = password
	err := Send(context.Background(), cfg, sampleReport(), nil)
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	assertNoSecret(t, err, cfg)
	if !strings.Contains(strings.ToLower(err.Error()), "auth") {
		t.Errorf("error %q does not say authentication failed", err)
	}
	if n := len(m.Messages(t)); n != 0 {
		t.Errorf("%d messages delivered with a wrong password", n)
	}
}

func assertNoSecret(t *testing.T, err error, cfg EmailConfig) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		for _, secret := range []string{cfg.Password, base64.StdEncoding.EncodeToString([]byte(cfg.Password)),
			base64.StdEncoding.EncodeToString([]byte("\x00" + cfg.User + "\x00" + cfg.Password))} {
			if strings.Contains(msg, secret) {
				t.Errorf("error reveals the password: %q", msg)
			}
		}
	}
}

// A server that echoes the credentials back in its refusal must not get the
// password into the error.
func TestSendRedactsEchoedCredentials(t *testing.T) {
	t.Parallel()
	const password = "Echo-Me-If-You-Dare-7"
	addr := echoingSMTP(t)
	cfg := EmailConfig{Addr: addr, TLS: TLSNone, User: "duosync", Password: password, From: "d@example.com", To: []string{"it@example.com"}, Timeout: 5 * time.Second}
	err := Send(context.Background(), cfg, sampleReport(), nil)
	if err == nil {
		t.Fatal("Send succeeded against a refusing server")
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("the fake server did not echo the credentials, the test proves nothing: %v", err)
	}
	assertNoSecret(t, err, cfg)
}

// echoingSMTP serves one SMTP session that refuses AUTH PLAIN and quotes
// the client's credentials, decoded and encoded, in its refusal.
func echoingSMTP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		rd := bufio.NewReader(c)
		write := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
		write("220 echo ESMTP")
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimRight(line, "\r\n")
			switch up := strings.ToUpper(cmd); {
			case strings.HasPrefix(up, "EHLO"):
				write("250-echo")
				write("250 AUTH PLAIN LOGIN")
			case strings.HasPrefix(up, "AUTH PLAIN"):
				b64 := strings.TrimSpace(cmd[len("AUTH PLAIN"):])
				dec, _ := base64.StdEncoding.DecodeString(b64)
				write("535 5.7.8 bad credentials " + b64 + " " + strings.ReplaceAll(string(dec), "\x00", " "))
			case strings.HasPrefix(up, "QUIT"):
				write("221 bye")
				return
			default:
				write("502 not here")
			}
		}
	}()
	return l.Addr().String()
}

// A line break in any value of the report cannot add a header.
func TestSendHeaderInjection(t *testing.T) {
	t.Parallel()
	m := testenv.Mailpit(t)
	r := sampleReport()
	r.Mode = "APPLY\r\nBcc: evil@x"
	r.RunID = "run\r\nBcc: evil@x"
	r.Version = "1.0\r\nBcc: evil@x"
	r.Requests[0].Requester = "Eve\r\nBcc: evil@x"
	r.Requests[0].Username = "eve\nBcc: evil@x"
	if err := Send(context.Background(), mailpitConfig(m), r, []byte("a,b\r\n")); err != nil {
		t.Fatal(err)
	}
	msgs := m.WaitMessages(t, 1, 10*time.Second)
	msg := m.Message(t, msgs[0].ID)
	if len(msg.Bcc) != 0 {
		t.Errorf("a Bcc recipient was injected: %v", msg.Bcc)
	}
	for name := range m.Headers(t, msg.ID) {
		if strings.EqualFold(name, "Bcc") {
			t.Errorf("a Bcc header was injected")
		}
	}
	raw := m.Raw(t, msg.ID)
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc:") {
			t.Errorf("header line %q", line)
		}
	}
	if got := len(msg.To); got != 2 {
		t.Errorf("%d recipients, want the 2 configured", got)
	}
}

// A relay that offers only LOGIN gets the credentials through LOGIN.
func TestSendLoginAuth(t *testing.T) {
	t.Parallel()
	addr, got := loginOnlySMTP(t)
	cfg := EmailConfig{Addr: addr, TLS: TLSNone, User: "duosync", Password: "login-pass", From: "d@example.com", To: []string{"it@example.com"}, Timeout: 5 * time.Second}
	if err := Send(context.Background(), cfg, sampleReport(), []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	creds := <-got
	if creds != "duosync:login-pass" {
		t.Errorf("server received credentials %q", creds)
	}
}

// loginOnlySMTP serves one session that offers AUTH LOGIN only, accepts
// any message, and reports the credentials it received.
func loginOnlySMTP(t *testing.T) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		rd := bufio.NewReader(c)
		write := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
		broken := false
		read := func() string {
			line, err := rd.ReadString('\n')
			broken = broken || err != nil
			return strings.TrimRight(line, "\r\n")
		}
		b64 := func(s string) string { d, _ := base64.StdEncoding.DecodeString(s); return string(d) }
		write("220 login-only ESMTP")
		for {
			cmd := read()
			switch up := strings.ToUpper(cmd); {
			case broken:
				return
			case strings.HasPrefix(up, "EHLO"):
				write("250-login-only")
				write("250 AUTH LOGIN")
			case strings.HasPrefix(up, "AUTH LOGIN"):
				write("334 VXNlcm5hbWU6")
				user := b64(read())
				write("334 UGFzc3dvcmQ6")
				pass := b64(read())
				got <- user + ":" + pass
				write("235 2.7.0 ok")
			case strings.HasPrefix(up, "DATA"):
				write("354 go on")
				for read() != "." && !broken {
				}
				write("250 2.0.0 queued")
			case strings.HasPrefix(up, "QUIT"):
				write("221 bye")
				return
			default: // MAIL, RCPT, NOOP, RSET
				write("250 ok")
			}
		}
	}()
	return l.Addr().String(), got
}
