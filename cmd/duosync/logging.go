package main

import (
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"
)

// newLogger sets up log/slog, in this one place: text for a person at a
// terminal, JSON for cron, systemd and Kubernetes. Logs go to stderr so that
// stdout carries only what the command prints (the plan, JSON output).
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		lv = slog.LevelInfo
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usageErrorf("log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "auto":
		if isTerminalWriter(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("log format %q: use auto, text or json", format)
}

func isTerminalWriter(w io.Writer) bool {
	if sw, ok := w.(*syncWriter); ok {
		w = sw.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// isTerminal reports whether the command talks to a person: stdin and
// stdout are both terminals.
func (e Env) isTerminal() bool {
	if e.IsTerminal != nil {
		return e.IsTerminal()
	}
	in, ok := e.Stdin.(*os.File)
	return ok && term.IsTerminal(int(in.Fd())) && isTerminalWriter(e.Stdout)
}
