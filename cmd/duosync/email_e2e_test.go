package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/internal/testenv"
	"github.com/duosync/duosync/journal"
)

func emailConfig(smtp, tlsMode, caFile string) string {
	return fmt.Sprintf(`policy:
  max_creates: 10
report:
  email:
    smtp: %s
    tls: %s
    ca_file: %q
    user: duosync
    password_file: smtp-password
    from: duosync@example.com
    to: [it-identity@example.com, secops@example.com]
    when: always
`, smtp, tlsMode, caFile)
}

// TestApplyEmailsTheReport sends the report through a real SMTP server
// (mailpit, STARTTLS with auth) and checks the message through its API.
func TestApplyEmailsTheReport(t *testing.T) {
	mp := testenv.MailpitWith(t, testenv.MailpitOptions{TLS: "starttls", Users: map[string]string{"duosync": "smtp-Secret-42"}})
	s := newSetup(t, emailConfig(mp.SMTPAddr, "starttls", mp.CAFile))
	writeFile(t, s.dir, "smtp-password", "smtp-Secret-42\n")

	r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv"))
	if r.code != 0 {
		t.Fatalf("apply: %v", r)
	}
	msgs := mp.WaitMessages(t, 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("messages: %d, want 1", len(msgs))
	}
	m := mp.Message(t, msgs[0].ID)
	if m.Subject != "duosync APPLY: 7 created, 7 enrolled, 9 added, 1 blocked, 1 invalid" {
		t.Errorf("subject %q", m.Subject)
	}
	var to []string
	for _, a := range m.To {
		to = append(to, a.Address)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"it-identity@example.com", "secops@example.com"}) {
		t.Errorf("recipients %v", to)
	}
	if m.Username != "duosync" {
		t.Errorf("SMTP AUTH user %q, want duosync", m.Username)
	}
	if !strings.Contains(m.Text, "john.smith@example.com") || !strings.Contains(m.HTML, "john.smith@example.com") {
		t.Errorf("text or HTML part lacks the rows:\ntext: %.300s\nhtml: %.300s", m.Text, m.HTML)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments: %+v", m.Attachments)
	}
	rep := lastReport(t, s)
	onDisk, err := os.ReadFile(filepath.Join(s.state, "reports", rep.RunID+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mp.Part(t, m.ID, m.Attachments[0].PartID); !bytes.Equal(got, onDisk) {
		t.Errorf("the attached CSV differs from the one on disk (%d vs %d bytes)", len(got), len(onDisk))
	}
	if rep.Email == nil || rep.Email.SentAt.IsZero() || rep.Email.Error != "" {
		t.Errorf("the report JSON does not record the delivery: %+v", rep.Email)
	}
	if strings.Contains(r.stdout+r.stderr, "smtp-Secret-42") {
		t.Error("the SMTP password appears in the output")
	}
}

// TestEmailFailureKeepsTheReport: with SMTP down the run still succeeds,
// the report is on disk, the failure is journaled, and `report --send`
// delivers it once the server is up.
func TestEmailFailureKeepsTheReport(t *testing.T) {
	addr := testenv.FreeAddr()
	s := newSetup(t, emailConfig(addr, "none", ""))
	writeFile(t, s.dir, "smtp-password", "pw\n")

	r := s.run(t, "apply", "--yes", "--source", repoFile("sample.csv"))
	if r.code != 0 {
		t.Fatalf("apply with SMTP down must still exit 0: %v", r)
	}
	if !strings.Contains(r.stderr, "email report") || !strings.Contains(r.stderr, "--send") {
		t.Errorf("the failure is not logged with what to do:\n%s", r.stderr)
	}
	rep := lastReport(t, s)
	for _, ext := range []string{".txt", ".csv", ".json", ".html"} {
		if _, err := os.Stat(filepath.Join(s.state, "reports", rep.RunID+ext)); err != nil {
			t.Errorf("report %s: %v", ext, err)
		}
	}
	j, err := journal.Open(filepath.Join(s.state, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := j.Run(context.Background(), rep.RunID)
	j.Close()
	if err != nil || run.EmailStatus != "failed" || run.EmailError == "" {
		t.Fatalf("journal email status: %+v %v", run, err)
	}

	mp := testenv.MailpitWith(t, testenv.MailpitOptions{SMTPAddr: addr})
	r = s.run(t, "report", rep.RunID, "--send")
	if r.code != 0 {
		t.Fatalf("report --send: %v", r)
	}
	if msgs := mp.WaitMessages(t, 1, 20*time.Second); len(msgs) != 1 {
		t.Fatalf("messages after --send: %d", len(msgs))
	}
	j, _ = journal.Open(filepath.Join(s.state, "journal.db"))
	run, _ = j.Run(context.Background(), rep.RunID)
	j.Close()
	if run.EmailStatus != "sent" {
		t.Errorf("journal email status after --send: %q", run.EmailStatus)
	}
}
