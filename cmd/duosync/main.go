// Command duosync provisions Duo Security from approved ServiceNow requests.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	ctx := context.Background()
	os.Exit(Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Run is the whole program behind main, so that tests run the same code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: duosync COMMAND")
		return exitUsage
	}
	var err error
	switch args[0] {
	case "emulate":
		if len(args) < 2 {
			err = usageErrorf("emulate: name duo or servicenow")
			break
		}
		switch args[1] {
		case "duo":
			err = runEmulateDuo(ctx, args[2:], stdout, stderr)
		case "servicenow":
			err = runEmulateServiceNow(ctx, args[2:], stdout, stderr)
		default:
			err = usageErrorf("emulate: unknown emulator %q (duo or servicenow)", args[1])
		}
	default:
		err = usageErrorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "duosync:", err)
	}
	return exitCode(err)
}
