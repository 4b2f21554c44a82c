package duo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/duosync/duosync/duo"
	"github.com/duosync/duosync/duo/duotest"
)

// A failed call says how many attempts it made, for the report.
func TestFailedCallCountsItsAttempts(t *testing.T) {
	srv := startEmulator(t, duotest.Options{})
	c := emulatorClient(t, srv, func(cfg *duo.Config) {
		cfg.MaxAttempts = 3
		cfg.RetryBase, cfg.RetryMax = time.Millisecond, time.Millisecond
	})
	srv.Inject(duotest.Fault{Method: "POST", Path: "/admin/v1/groups", Count: 10, Status: 503})
	_, err := c.CreateGroup(context.Background(), "G")
	if err == nil {
		t.Fatal("create group succeeded through 503s")
	}
	if n := duo.Attempts(err); n != 3 {
		t.Errorf("Attempts = %d, want 3 (MaxAttempts)", n)
	}
	// A refused request is not retried: one attempt.
	if _, err := c.CreateUser(context.Background(), duo.NewUser{Username: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateUser(context.Background(), duo.NewUser{Username: "a@example.com"})
	var de *duo.Error
	if !errors.As(err, &de) || duo.Attempts(err) != 1 {
		t.Errorf("a 400 made %d attempts (%v), want 1", duo.Attempts(err), err)
	}
	if duo.Attempts(errors.New("other")) != 0 {
		t.Error("Attempts of a foreign error must be 0")
	}
}
