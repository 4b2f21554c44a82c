package report

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duosync/duosync/internal/testenv"
)

// The "SMTP down" story: the run's report is on disk, the failure is
// recorded (JSON, log) without the password, and a later resend delivers
// the same CSV once the relay is up.
func TestPublishSMTPDownThenResend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := testenv.FreeAddr()
	cfg := EmailConfig{Addr: addr, TLS: TLSNone, User: "duosync", Password: "Pa55-in-no-log", From: "duosync@example.com",
		To: []string{"it@example.com"}, When: WhenAlways, Timeout: 10 * time.Second}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	r := sampleReport()
	d, err := Publish(context.Background(), dir, &cfg, r, log)
	if err != nil {
		t.Fatalf("Publish with the relay down: %v (the report must still be written)", err)
	}
	if !d.Attempted || d.EmailErr == nil {
		t.Fatalf("delivery %+v: want an attempted, failed email", d)
	}
	csvOnDisk, err := os.ReadFile(d.Paths.CSV)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSONFile(d.Paths.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if back.Email == nil || back.Email.Error == "" || !back.Email.SentAt.IsZero() {
		t.Errorf("JSON email status %+v, want the failure", back.Email)
	}
	if !strings.Contains(logs.String(), "report email failed") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
	for _, where := range []string{logs.String(), back.Email.Error, d.EmailErr.Error()} {
		if strings.Contains(where, cfg.Password) {
			t.Errorf("the SMTP password leaked: %s", where)
		}
	}

	// Later: `duosync report RUN_ID --send`, re-reading the JSON.
	m := testenv.MailpitWith(t, testenv.MailpitOptions{SMTPAddr: addr})
	d, err = Resend(context.Background(), dir, cfg, back, log)
	if err != nil {
		t.Fatalf("Resend: %v", err)
	}
	msgs := m.WaitMessages(t, 1, 10*time.Second)
	msg := m.Message(t, msgs[0].ID)
	if len(msg.Attachments) != 1 || !bytes.Equal(m.Part(t, msg.ID, msg.Attachments[0].PartID), csvOnDisk) {
		t.Errorf("the resent attachment is not the run's CSV")
	}
	after, err := ReadJSONFile(d.Paths.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if after.Email == nil || after.Email.Error != "" || after.Email.SentAt.IsZero() {
		t.Errorf("JSON email status after resend %+v", after.Email)
	}
	if csvNow, _ := os.ReadFile(d.Paths.CSV); !bytes.Equal(csvNow, csvOnDisk) {
		t.Errorf("the CSV on disk changed")
	}
}

func TestPublishHonoursWhen(t *testing.T) {
	t.Parallel()
	quiet := New("quiet-run", ModeApply)
	quiet.Summary.InSync = 3
	// Nothing listens there: an attempt would fail and show.
	cfg := EmailConfig{Addr: testenv.FreeAddr(), TLS: TLSNone, From: "d@example.com", To: []string{"it@example.com"}, When: WhenChanges}
	d, err := Publish(context.Background(), t.TempDir(), &cfg, quiet, nil)
	if err != nil || d.Attempted || d.EmailErr != nil || quiet.Email != nil {
		t.Errorf("when=changes on a quiet run: %+v, %v; want no attempt", d, err)
	}
	if _, err := os.Stat(d.Paths.JSON); err != nil {
		t.Errorf("report not written: %v", err)
	}
	d, err = Publish(context.Background(), t.TempDir(), nil, quiet, nil)
	if err != nil || d.Attempted {
		t.Errorf("no email config: %+v, %v", d, err)
	}
}

func TestResendWritesMissingFiles(t *testing.T) {
	t.Parallel()
	m := testenv.Mailpit(t)
	dir := t.TempDir()
	r := guardReport()
	if _, err := Resend(context.Background(), dir, mailpitConfig(m), r, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := PathsFor(dir, r.RunID)
	csvData, err := os.ReadFile(p.CSV)
	if err != nil {
		t.Fatalf("Resend did not write the missing files: %v", err)
	}
	msgs := m.WaitMessages(t, 1, 10*time.Second)
	msg := m.Message(t, msgs[0].ID)
	if !bytes.Equal(m.Part(t, msg.ID, msg.Attachments[0].PartID), csvData) {
		t.Errorf("attachment differs from the CSV written")
	}
	if msg.Subject != "duosync APPLY: GUARD TRIPPED, nothing written" {
		t.Errorf("subject %q", msg.Subject)
	}
}
