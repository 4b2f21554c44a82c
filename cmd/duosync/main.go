// Command duosync provisions Duo Security from approved ServiceNow requests.
//
// main is deliberately thin: it turns signals into a cancelled context and
// hands everything to Run, which end-to-end tests call directly.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

func main() {
	ctx, stop := notifyContext(context.Background())
	defer stop()
	code := Run(ctx, os.Args[1:], Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}

// notifyContext cancels the returned context on the first SIGINT or SIGTERM,
// with a cause that records which signal it was (for exit 130 or 143). A
// second signal exits at once: the journal is written transaction by
// transaction, so it stays valid.
func notifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(&interruptedError{sig: sig.(syscall.Signal)})
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			fmt.Fprintf(os.Stderr, "duosync: second %v: exiting now\n", sig)
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	var once bool
	return ctx, func() {
		if !once {
			once = true
			signal.Stop(ch)
			close(done)
			cancel(nil)
		}
	}
}

// Env is the process environment a command runs in. Tests pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// IsTerminal reports whether stdin/stdout are a terminal (prompts,
	// progress bars, text logs). Nil means "ask the OS".
	IsTerminal func() bool
}

// syncWriter serialises writes to a stream shared by goroutines. It keeps
// the *os.File underneath visible to terminal detection.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newSyncWriter(w io.Writer) io.Writer {
	if w == nil {
		w = io.Discard
	}
	if _, ok := w.(*syncWriter); ok {
		return w
	}
	return &syncWriter{w: w}
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"plan", "show what apply would do (never writes to Duo)", runPlan},
		{"apply", "apply the plan (or a saved plan.json) to Duo", runApply},
		{"validate", "parse and validate the source only, no Duo access", runValidate},
		{"report", "re-render or re-send a run's report from the journal", runReport},
		{"history", "list runs from the journal", runHistory},
		{"schedule", "run the configured schedules (cron daemon)", runSchedule},
		{"emulate", "run a Duo or ServiceNow emulator: emulate duo|servicenow", runEmulate},
		{"demo", "the whole job on an embedded Duo emulator, no setup", runDemo},
		{"completion", "print a shell completion script: completion bash|zsh|fish", runCompletion},
		{"version", "print the version, commit and Go version", runVersion},
	}
}

// Run runs duosync with args (without the program name) and returns the
// process exit code. Every error is mapped to an exit code here, in one place.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	// The apply pool's goroutines log, and the progress bar draws, on the
	// same stream: one lock keeps their lines whole.
	env.Stdout, env.Stderr = newSyncWriter(env.Stdout), newSyncWriter(env.Stderr)
	err := dispatch(ctx, env, args)
	if err != nil && !isSilent(err) {
		fmt.Fprintln(env.Stderr, "duosync:", err)
	}
	return exitCode(err)
}

func dispatch(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return dispatch(ctx, env, []string{args[1], "--help"})
		}
		printUsage(env.Stdout)
		if len(args) == 0 {
			return withCode(exitUsage, silentError("no command"))
		}
		return nil
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(ctx, env, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	return usageErrorf("unknown command %q (see duosync --help)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "duosync provisions Duo Security from approved ServiceNow requests.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: duosync COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'duosync COMMAND --help' for a command's flags, their environment variables and defaults.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 error, 2 changes pending (plan --detailed-exitcode), 3 partial failure,")
	fmt.Fprintln(w, "4 guard tripped, 5 locked by another run, 64 usage/config error, 130/143 interrupted.")
}

func runEmulate(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stdout, "Usage: duosync emulate duo|servicenow [flags]  (see duosync emulate duo --help)")
		if len(args) == 0 {
			return usageErrorf("emulate: name duo or servicenow")
		}
		return nil
	}
	switch args[0] {
	case "duo":
		return runEmulateDuo(ctx, args[1:], env.Stdout, env.Stderr)
	case "servicenow":
		return runEmulateServiceNow(ctx, args[1:], env.Stdout, env.Stderr)
	}
	return usageErrorf("emulate: unknown emulator %q (duo or servicenow)", args[0])
}
