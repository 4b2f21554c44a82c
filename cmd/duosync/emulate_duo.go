package main

import (
	"context"
	"errors"
	"io"
)

// runEmulateDuo serves `duosync emulate duo` (owned by the duotest helper).
func runEmulateDuo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("emulate duo: not implemented yet")
}
