package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/duosync/duosync/statedir"
	dsync "github.com/duosync/duosync/sync"
)

// Exit codes: the contract of DESIGN.md. They are chosen in one place,
// exitCode, from the error a command returns.
const (
	exitOK          = 0
	exitError       = 1
	exitChanges     = 2   // plan --detailed-exitcode: changes pending
	exitPartial     = 3   // some actions failed
	exitGuard       = 4   // a guard tripped; nothing was written
	exitLocked      = 5   // another run holds the lock
	exitUsage       = 64  // usage or configuration error
	exitInterrupted = 130 // SIGINT (143 for SIGTERM)
)

// codedError carries an exit code chosen by the command that failed.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode attaches an exit code to err (nil stays nil).
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// usageErrorf reports a usage or configuration error (exit 64).
func usageErrorf(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// interruptedError is the cause of the root context's cancellation when a
// signal arrived.
type interruptedError struct{ sig syscall.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + e.sig.String() }

// silent errors carry an exit code but have already been explained to the
// user (the plan was printed, the report says what failed).
type silent struct{ msg string }

func (s silent) Error() string { return s.msg }

func silentError(msg string) error { return silent{msg} }

func isSilent(err error) bool {
	var s silent
	return errors.As(err, &s)
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ce *codedError
	var ie *interruptedError
	var ge *dsync.GuardError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ie):
		return 128 + int(ie.sig)
	case errors.Is(err, statedir.ErrLocked):
		return exitLocked
	case errors.As(err, &ge):
		return exitGuard
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitError
}

// interruption returns the signal error that cancelled ctx, if any.
func interruption(ctx context.Context) *interruptedError {
	var ie *interruptedError
	if errors.As(context.Cause(ctx), &ie) {
		return ie
	}
	return nil
}
