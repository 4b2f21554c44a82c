package main

import (
	"context"
	"errors"
	"io"
)

// runEmulateServiceNow serves `duosync emulate servicenow` (owned by the servicenow helper).
func runEmulateServiceNow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("emulate servicenow: not implemented yet")
}
