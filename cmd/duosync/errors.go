package main

import (
	"errors"
	"fmt"
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

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}
