package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/duosync/duosync/duo/duotest"
)

// runEmulateDuo serves `duosync emulate duo`: the Duo Admin API emulator of
// package duotest, until ctx is cancelled. It prints exactly one ready line
// on stdout once listening; logs go to stderr.
func runEmulateDuo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate duo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen     = fs.String("listen", "127.0.0.1:0", "address to serve HTTPS on")
		seedFile   = fs.String("seed", "", "JSON `file` of initial users and groups ({\"users\":[…],\"groups\":[…]})")
		genUsers   = fs.Int("generate-users", 0, "add `N` synthetic users (deterministic)")
		genGroups  = fs.Int("generate-groups", 0, "add `G` synthetic groups the synthetic users join")
		genSeed    = fs.Int64("generate-seed", 1, "seed of synthetic data, ids and enrollment codes")
		latency    = fs.Duration("latency", 0, "added to every API answer, e.g. 20ms")
		rateSpec   = fs.String("rate-limit", "", "separate read (GET) and write budgets: `SPEC` is reads=N/m,writes=N/m (also N/s, N/h; an omitted one is unlimited), e.g. reads=200/m,writes=300/m; excess is 429 42901")
		faultRate  = fs.Float64("fault-rate", 0, "share of API requests (0..1) answered with a fault: 500, 503, dropped connection, lost answer, slow answer")
		faultSeed  = fs.Int64("fault-seed", 1, "seed of the fault sequence")
		pageCap    = fs.Int("page-cap", 0, "return at most `N` rows per page even when limit is larger (0 = off)")
		ikey       = fs.String("ikey", "", "integration key to accept (default: random DI…)")
		clockSkew  = fs.Duration("clock-skew", 5*time.Minute, "allowed difference between a request's date and the clock")
		caseSens   = fs.Bool("case-sensitive-usernames", false, "match usernames and aliases exactly (trimmed) instead of case-folded")
		verbose    = fs.Bool("verbose", false, "log every API request on stderr")
		slowAnswer = fs.Duration("slow-answer", 500*time.Millisecond, "delay of a slow-answer fault")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: duosync emulate duo [flags]

Serves an emulated Duo Admin API over HTTPS and prints one ready line on
stdout: {"host":"127.0.0.1:PORT","ikey":"…","skey":"…","ca_file":"…"}.
The secret key is $DUO_EMULATOR_SKEY if set, else random. Inspect it with
GET /_emulator/state and /_emulator/stats (unsigned). Runs until interrupted.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErrorf("emulate duo: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("emulate duo: unexpected argument %q", fs.Arg(0))
	}
	reads, writes, err := parseRateLimit(*rateSpec)
	if err != nil {
		return usageErrorf("emulate duo: --rate-limit: %v", err)
	}
	switch {
	case *faultRate < 0 || *faultRate > 1:
		return usageErrorf("emulate duo: --fault-rate %v: must be between 0 and 1", *faultRate)
	case *genUsers < 0 || *genGroups < 0 || *pageCap < 0:
		return usageErrorf("emulate duo: --generate-users, --generate-groups and --page-cap must not be negative")
	case *latency < 0 || *clockSkew <= 0 || *slowAnswer < 0:
		return usageErrorf("emulate duo: --latency and --slow-answer must not be negative, --clock-skew must be positive")
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts := duotest.Options{
		IKey:                   *ikey,
		SKey:                   os.Getenv("DUO_EMULATOR_SKEY"),
		GenerateUsers:          *genUsers,
		GenerateGroups:         *genGroups,
		GenerateSeed:           *genSeed,
		Latency:                *latency,
		ReadsPerMinute:         reads,
		WritesPerMinute:        writes,
		FaultRate:              *faultRate,
		FaultSeed:              *faultSeed,
		SlowAnswer:             *slowAnswer,
		PageCap:                *pageCap,
		ClockSkew:              *clockSkew,
		CaseSensitiveUsernames: *caseSens,
		Logger:                 slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if *seedFile != "" {
		seed, err := duotest.LoadSeed(*seedFile)
		if err != nil {
			return usageErrorf("emulate duo: --seed: %v", err)
		}
		opts.Seed = seed
	}
	srv, err := duotest.Listen(*listen, opts)
	if err != nil {
		return fmt.Errorf("emulate duo: %w", err)
	}
	defer srv.Close()
	if _, err := stdout.Write(srv.ReadyLine()); err != nil {
		return fmt.Errorf("emulate duo: write ready line: %w", err)
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("emulate duo: close: %w", err)
	}
	return nil
}

// parseRateLimit reads a --rate-limit SPEC: comma-separated reads=RATE and
// writes=RATE, where RATE is N/m, N/s, N/h or N (per minute). An omitted
// budget is unlimited. It returns per-minute budgets.
func parseRateLimit(spec string) (reads, writes int, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "off" {
		return 0, 0, nil
	}
	for part := range strings.SplitSeq(spec, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, 0, fmt.Errorf("%q: want reads=N/m or writes=N/m", part)
		}
		n, unit, _ := strings.Cut(value, "/")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || count <= 0 {
			return 0, 0, fmt.Errorf("%q: %q is not a positive count", part, n)
		}
		switch strings.TrimSpace(unit) {
		case "", "m", "min":
		case "s":
			count *= 60
		case "h":
			count = max(1, count/60)
		default:
			return 0, 0, fmt.Errorf("%q: unit %q is not s, m or h", part, unit)
		}
		switch strings.TrimSpace(name) {
		case "reads":
			reads = count
		case "writes":
			writes = count
		default:
			return 0, 0, fmt.Errorf("%q: %q is not reads or writes", part, name)
		}
	}
	return reads, writes, nil
}
