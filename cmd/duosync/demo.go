package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/duosync/duosync"
	"github.com/duosync/duosync/duo/duotest"
	"github.com/duosync/duosync/report"
	dsync "github.com/duosync/duosync/sync"
)

// demoSeed is the Duo account the demo starts from: three groups, one user
// already provisioned as sample.csv asks (Maria Garcia), one disabled user
// with a pending request (Tom Baker, blocked for a human), and an admin who
// is in a managed group without a request (reported as drift, never removed).
func demoSeed() *duotest.Seed {
	return &duotest.Seed{
		Groups: []duotest.SeedGroup{
			{Name: "MFA Users", Desc: "Everyone enrolled in Duo MFA"},
			{Name: "VPN Users", Desc: "Remote access"},
			{Name: "Finance Apps", Desc: "SAP and the expense system"},
		},
		Users: []duotest.SeedUser{
			{Username: "maria.garcia@example.com", Aliases: []string{"mgarcia", `GLOBAL\mgarcia`},
				Email: "maria.garcia@example.com", Realname: "Maria Garcia", Firstname: "Maria", Lastname: "Garcia",
				Notes: "RITM0010005", IsEnrolled: true, Groups: []string{"MFA Users"}},
			{Username: "tom.baker@example.com", Aliases: []string{"tbaker", `GLOBAL\tbaker`},
				Email: "tom.baker@example.com", Realname: "Tom Baker", Firstname: "Tom", Lastname: "Baker",
				Status: "disabled", IsEnrolled: true},
			{Username: "it.admin@example.com", Email: "it.admin@example.com", Realname: "IT Admin",
				IsEnrolled: true, Groups: []string{"MFA Users", "VPN Users"}},
		},
	}
}

// runDemo runs the whole job on the embedded emulator and sample.csv: plan,
// apply, the report, and a second plan that finds nothing to do.
func runDemo(ctx context.Context, env Env, args []string) error {
	var keep string
	f := newFlagSet("demo", "duosync demo [--dir DIR]", env.Stdout)
	f.String(&keep, "dir", "", filepath.Join(os.TempDir(), "duosync-demo"), "where the demo writes its state, journal and reports (emptied first)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if len(f.Args()) > 0 {
		return usageErrorf("demo: unexpected argument %q", f.Args()[0])
	}
	dir, err := filepath.Abs(keep)
	if err != nil {
		return err
	}
	if err := resetDemoDir(dir); err != nil {
		return err
	}
	csvPath := filepath.Join(dir, "sample.csv")
	if err := os.WriteFile(csvPath, duosync.SampleCSV, 0o600); err != nil {
		return err
	}

	emu, err := duotest.NewServer(duotest.Options{Seed: demoSeed(), GenerateSeed: 1})
	if err != nil {
		return fmt.Errorf("start the Duo emulator: %w", err)
	}
	defer emu.Close()

	w := env.Stdout
	bold, plain := "", ""
	if isTerminalWriter(w) {
		bold, plain = "\033[1m", "\033[0m"
	}
	step := func(n int, title string) {
		fmt.Fprintf(w, "\n%s── Step %d: %s%s\n\n", bold, n, title, plain)
	}
	fmt.Fprintf(w, "duosync demo: a Duo Admin API emulator is listening on https://%s (its own CA, request signing checked).\n", emu.Host())
	fmt.Fprintf(w, "It holds 3 groups and 3 users: maria.garcia (already provisioned), tom.baker (disabled), it.admin.\n")
	fmt.Fprintf(w, "The approved requests come from sample.csv, a ServiceNow sc_req_item export of 25 rows.\n")

	s := &settings{
		cfg:     &Config{},
		duoHost: emu.Host(), duoIKey: emu.IKey(), duoSKey: emu.SKey(), duoCAFile: emu.CAFile(),
		workers: 4, sourceKind: "csv", csvPaths: []string{csvPath},
		mapping: dsync.DefaultMapping(), policy: dsync.DefaultPolicy(),
		stateDir: filepath.Join(dir, "state"), reportDir: filepath.Join(dir, "reports"),
		logFormat: "text", logLevel: "warn",
	}
	// The demo account is small: 7 creations are far more than 10% of 3
	// users, so the creation guard is set to a count here (and says so).
	s.policy.MaxCreates = dsync.Count(25)
	s.policy.MaxInvalid = dsync.Count(5)

	step(1, "duosync plan (a dry run: nothing is written)")
	if err := runDemoPlan(ctx, env, s); err != nil {
		return err
	}

	step(2, "duosync apply --yes")
	r, err := newRun(ctx, env, s, "apply", "demo apply")
	if err != nil {
		return err
	}
	r.quietPlan = true // step 1 showed it
	applyErr := r.finish(ctx, r.apply(ctx, "", true))
	r.close()
	if applyErr != nil && exitCode(applyErr) != exitPartial {
		return applyErr
	}

	step(3, "the reconciliation report (what IT receives by email)")
	if r.report != nil {
		if err := report.WriteText(w, r.report); err != nil {
			return err
		}
	}

	step(4, "duosync plan again: Duo now matches the requests")
	if err := runDemoPlan(ctx, env, s); err != nil {
		return err
	}

	st := emu.State()
	fmt.Fprintf(w, "\nThe emulator now holds %d users; %d enrollment emails are in its outbox.\n", len(st.Users), len(st.Outbox))
	if r.reportPaths.HTML != "" {
		fmt.Fprintf(w, "\nThe HTML report (the email body IT receives): %s\n", r.reportPaths.HTML)
		fmt.Fprintf(w, "CSV, JSON and text versions sit beside it. The journal: %s\n", filepath.Join(s.stateDir, "journal.db"))
	}
	fmt.Fprintf(w, "Try: %s history --state-dir %s\n", os.Args[0], s.stateDir)
	return nil
}

func runDemoPlan(ctx context.Context, env Env, s *settings) error {
	r, err := newRun(ctx, env, s, "plan", "demo plan")
	if err != nil {
		return err
	}
	defer r.close()
	return r.finish(ctx, r.planOnly(ctx, "", false))
}

// resetDemoDir empties the demo directory, refusing anything that does not
// look like an earlier demo's.
func resetDemoDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return os.MkdirAll(dir, 0o700)
	} else if err != nil {
		return err
	}
	for _, e := range entries {
		switch e.Name() {
		case "sample.csv", "state", "reports":
		default:
			return usageErrorf("demo: %s holds %q, which the demo did not write: choose another --dir", dir, e.Name())
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
