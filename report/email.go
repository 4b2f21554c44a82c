package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// TLS modes of EmailConfig.TLS.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is required
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS: only to a loopback relay
)

// When values of EmailConfig.When.
const (
	WhenAlways   = "always"
	WhenChanges  = "changes"
	WhenFailures = "failures"
)

// DefaultEmailTimeout bounds connecting and each SMTP exchange when
// EmailConfig.Timeout is zero.
const DefaultEmailTimeout = 30 * time.Second

// EmailConfig is how the report is emailed (config key report.email).
type EmailConfig struct {
	Addr     string // host:port of the SMTP relay
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSNone (loopback only)
	User     string // empty: no authentication
	Password string // never logged nor put in an error
	From     string
	To       []string
	When     string // WhenAlways (default), WhenChanges or WhenFailures
	// CAFile is an extra PEM CA bundle trusted besides the system's
	// (internal relays, tests). Verification is never skipped.
	CAFile  string
	Timeout time.Duration
}

// Validate checks the configuration without connecting; its errors name the
// config key at fault.
func (c EmailConfig) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" {
		return fmt.Errorf("report.email.smtp %q: want host:port", c.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("report.email.smtp %q: bad port", c.Addr)
	}
	switch c.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !isLoopback(host) {
			return fmt.Errorf("report.email.tls none: refused for %s, which is not a loopback address; use starttls or tls", host)
		}
	default:
		return fmt.Errorf("report.email.tls %q: want starttls, tls or none", c.TLS)
	}
	switch c.When {
	case "", WhenAlways, WhenChanges, WhenFailures:
	default:
		return fmt.Errorf("report.email.when %q: want always, changes or failures", c.When)
	}
	if c.Password != "" && c.User == "" {
		return errors.New("report.email: a password is set but no user")
	}
	if _, err := parseAddress(c.From); err != nil {
		return fmt.Errorf("report.email.from: %w", err)
	}
	if len(c.To) == 0 {
		return errors.New("report.email.to: no recipient")
	}
	for i, to := range c.To {
		if _, err := parseAddress(to); err != nil {
			return fmt.Errorf("report.email.to[%d]: %w", i, err)
		}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("report.email timeout %s: must not be negative", c.Timeout)
	}
	return nil
}

// parseAddress accepts one address ("it@example.com" or "IT <it@example.com>")
// and nothing that could smuggle in a header.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("address %q contains a line break", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	return a, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ShouldSend applies EmailConfig.When: always; changes when the run wrote
// (or, in PLAN mode, would write) something or failed; failures when an
// action failed, the run errored, a guard tripped or the run was
// interrupted. Blocked users, conflicts and invalid rows alone do not count
// as changes: they would otherwise mail the same news every run.
func ShouldSend(cfg EmailConfig, r *Report) bool {
	switch cfg.When {
	case WhenChanges:
		return r.Changes() > 0 || r.Failed()
	case WhenFailures:
		return r.Failed()
	default:
		return true
	}
}

// Subject summarises the run in one line, e.g.
// "duosync APPLY: 7 created, 7 enrolled, 9 added, 1 failed" or
// "duosync PLAN: 7 to create, 7 to enroll, 9 to add".
func Subject(r *Report) string {
	s := r.Summary
	plan := r.IsPlan()
	var parts []string
	add := func(n int, done, todo string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, verb(plan, done, todo)))
		}
	}
	add(s.Created, "created", "to create")
	add(s.Updated, "updated", "to update")
	add(s.EnrollmentsSent, "enrolled", "to enroll")
	add(s.MembershipsAdded, "added", "to add")
	add(s.GroupsCreated, "groups created", "groups to create")
	failed := max(s.Failed, len(r.Failures))
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", failed))
	}
	for _, c := range []struct {
		n    int
		what string
	}{
		{max(s.Blocked, len(r.Blocked)), "blocked"},
		{max(s.Conflicts, len(r.Conflicts)), "conflicts"},
		{max(s.Invalid, len(r.Invalid)), "invalid"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}

	var status string
	switch {
	case r.GuardTripped != "":
		status = "GUARD TRIPPED, nothing written"
	case r.Interrupted:
		status = "INTERRUPTED"
	case r.Error != "" || r.ExitCode == 1:
		status = "ERROR"
	}
	if status != "" {
		parts = append([]string{status}, parts...)
	}
	body := strings.Join(parts, ", ")
	if body == "" {
		body = "no changes"
	}
	// The subject holds counts and fixed words only, but a line break must
	// never reach a header whatever the mode string holds.
	return oneLine("duosync " + r.Mode + ": " + body)
}

// Send emails the report: a multipart/alternative text and HTML body with
// the CSV report attached as given (the bytes of the file on disk), to every
// recipient of cfg. It verifies the server's certificate (system roots plus
// cfg.CAFile) and never reveals cfg.Password in its error. ctx and
// cfg.Timeout bound the attempt.
func Send(ctx context.Context, cfg EmailConfig, r *Report, csvAttachment []byte) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	msg, err := newMessage(cfg, r, csvAttachment)
	if err != nil {
		return fmt.Errorf("email report %s: %w", r.RunID, err)
	}
	client, err := newClient(cfg)
	if err != nil {
		return redact(fmt.Errorf("email report %s via %s: %w", r.RunID, cfg.Addr, err), cfg)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return redact(fmt.Errorf("email report %s via %s: %w", r.RunID, cfg.Addr, err), cfg)
	}
	return nil
}

func newMessage(cfg EmailConfig, r *Report, csvAttachment []byte) (*gomail.Msg, error) {
	var text, html bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		return nil, err
	}
	if err := WriteHTML(&html, r); err != nil {
		return nil, err
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	from, _ := parseAddress(cfg.From) // validated
	m.FromMailAddress(from)
	to := make([]*mail.Address, len(cfg.To))
	for i, s := range cfg.To {
		to[i], _ = parseAddress(s)
	}
	m.ToMailAddress(to...)
	m.Subject(Subject(r))
	m.SetDate()
	m.SetMessageID()
	if v := oneLine(r.Version); v != "" {
		m.SetUserAgent("duosync " + v)
	} else {
		m.SetUserAgent("duosync")
	}
	m.SetBodyString(gomail.TypeTextPlain, text.String())
	m.AddAlternativeString(gomail.TypeTextHTML, html.String())
	if csvAttachment != nil {
		err := m.AttachReader(AttachmentName(r), bytes.NewReader(csvAttachment),
			gomail.WithFileContentType("text/csv; charset=utf-8"))
		if err != nil {
			return nil, fmt.Errorf("attach CSV: %w", err)
		}
	}
	return m, nil
}

// AttachmentName is the CSV attachment's file name.
func AttachmentName(r *Report) string {
	if runIDPattern.MatchString(r.RunID) {
		return "duosync-" + r.RunID + ".csv"
	}
	return "duosync-report.csv"
}

func newClient(cfg EmailConfig) (*gomail.Client, error) {
	host, portStr, _ := net.SplitHostPort(cfg.Addr) // validated
	port, _ := strconv.Atoi(portStr)
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultEmailTimeout
	}
	tlsConfig, err := clientTLS(host, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConfig),
	}
	switch cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.User != "" {
		// PLAIN when offered, else LOGIN. Both send the password as is, so
		// go-mail refuses them on a connection that is not encrypted,
		// except to loopback.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(cfg.User), gomail.WithPassword(cfg.Password))
	}
	return gomail.NewClient(host, opts...)
}

// clientTLS verifies the server as host against the system roots plus an
// optional extra CA bundle.
func clientTLS(host, caFile string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("report.email CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("report.email CA file %s: no PEM certificate found", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// redact returns err with the password (and its base64 forms, which an SMTP
// server may echo from an AUTH exchange) removed from the message. When
// nothing needs removing the error is returned unchanged, keeping its chain.
func redact(err error, cfg EmailConfig) error {
	if err == nil || cfg.Password == "" {
		return err
	}
	msg := err.Error()
	secrets := []string{
		cfg.Password,
		base64.StdEncoding.EncodeToString([]byte(cfg.Password)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + cfg.User + "\x00" + cfg.Password)),
	}
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, s, "[redacted]")
	}
	if clean == msg {
		return err
	}
	// The chain is dropped on purpose: an inner error would print the secret.
	return errors.New(clean)
}
