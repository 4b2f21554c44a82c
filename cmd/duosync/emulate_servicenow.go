package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/duosync/duosync/source/servicenow/sntest"
)

// runEmulateServiceNow serves `duosync emulate servicenow`: it prints the
// ready line once on stdout, then serves until ctx is cancelled. Passwords
// come from the environment (never argv) or are generated.
func runEmulateServiceNow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate servicenow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	seedFile := fs.String("seed", "", "seed JSON: users, catalog_items, requests")
	generate := fs.Int("generate", 0, "add N synthetic requests (deterministic)")
	genSeed := fs.Int64("generate-seed", 1, "seed for --generate")
	pageCap := fs.Int("page-cap", 0, "at most N records per page, whatever sysparm_limit says")
	rateLimit := fs.String("rate-limit", "", "rate limit: N/h, N/m, N/s or N/DURATION; answers 429 with Retry-After")
	latency := fs.Duration("latency", 0, "latency added to every Table API request")
	faultRate := fs.Float64("fault-rate", 0, "probability 0..1 of a fault (500, 503, dropped connection) per request")
	faultSeed := fs.Int64("fault-seed", 1, "seed for --fault-rate")
	tokenTTL := fs.Duration("token-ttl", 1800*time.Second, "OAuth access token lifetime")
	user := fs.String("user", "", "Basic auth user (default duosync.integration); password from $SN_PASSWORD or generated")
	clientID := fs.String("client-id", "", "enable OAuth with this client id; secret from $SN_CLIENT_SECRET or generated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErrorf("emulate servicenow: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("emulate servicenow: unexpected argument %q", fs.Arg(0))
	}
	if *generate < 0 || *pageCap < 0 || *latency < 0 || *tokenTTL <= 0 {
		return usageErrorf("emulate servicenow: --generate, --page-cap and --latency must not be negative, --token-ttl must be positive")
	}
	if *faultRate < 0 || *faultRate > 1 {
		return usageErrorf("emulate servicenow: --fault-rate %v: want 0..1", *faultRate)
	}
	rl, err := sntest.ParseRateLimit(*rateLimit)
	if err != nil {
		return usageErrorf("emulate servicenow: --%v", err)
	}
	opts := sntest.Options{
		User: *user, Password: os.Getenv("SN_PASSWORD"),
		ClientID: *clientID, ClientSecret: os.Getenv("SN_CLIENT_SECRET"),
		Generate: *generate, GenerateSeed: *genSeed, PageCap: *pageCap, RateLimit: rl,
		Latency: *latency, FaultRate: *faultRate, FaultSeed: *faultSeed, TokenTTL: *tokenTTL,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if *seedFile != "" {
		seed, err := sntest.LoadSeed(*seedFile)
		if err != nil {
			return usageErrorf("emulate servicenow: %v", err)
		}
		opts.Seed = seed
	}
	srv, err := sntest.Listen(*listen, opts)
	if err != nil {
		return fmt.Errorf("emulate servicenow: %w", err)
	}
	defer srv.Close()
	if _, err := stdout.Write(srv.ReadyLine()); err != nil {
		return fmt.Errorf("emulate servicenow: write ready line: %w", err)
	}
	<-ctx.Done()
	return nil
}
