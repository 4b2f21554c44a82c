package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a flag.FlagSet that also knows each flag's environment
// variable, so that --help can list both, and reports its errors as usage
// errors (exit 64).
type flagSet struct {
	fs      *flag.FlagSet
	usage   string
	envOf   map[string]string
	out     io.Writer
	helped  bool
	visited map[string]bool

	positional []string
}

func newFlagSet(name, usage string, out io.Writer) *flagSet {
	f := &flagSet{fs: flag.NewFlagSet("duosync "+name, flag.ContinueOnError), usage: usage, envOf: map[string]string{}, out: out}
	f.fs.SetOutput(io.Discard)
	return f
}

func (f *flagSet) String(p *string, name, env, def, help string) {
	f.fs.StringVar(p, name, def, help)
	f.envOf[name] = env
}

func (f *flagSet) Int(p *int, name, env string, def int, help string) {
	f.fs.IntVar(p, name, def, help)
	f.envOf[name] = env
}

func (f *flagSet) Bool(p *bool, name string, help string) {
	f.fs.BoolVar(p, name, false, help)
}

func (f *flagSet) Strings(p *[]string, name, env, help string) {
	f.fs.Var((*stringList)(p), name, help)
	f.envOf[name] = env
}

// Parse parses args, flags and positional arguments in any order
// ("apply plan.json --yes"); "--" ends the flags. It returns errHelp after
// printing the help for -h/--help.
func (f *flagSet) Parse(args []string) error {
	var err error
	for {
		if err = f.fs.Parse(args); err != nil {
			break
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			f.positional = append(f.positional, rest...)
			break
		}
		f.positional = append(f.positional, rest[0])
		args = rest[1:]
	}
	if errors.Is(err, flag.ErrHelp) {
		f.PrintHelp()
		f.helped = true
		return errHelp
	}
	if err != nil {
		return usageErrorf("%s: %v (see %s --help)", f.fs.Name(), err, f.fs.Name())
	}
	f.visited = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.visited[fl.Name] = true })
	return nil
}

// Set reports whether the flag was given on the command line.
func (f *flagSet) Set(name string) bool { return f.visited[name] }

// Args returns the positional arguments.
func (f *flagSet) Args() []string { return f.positional }

// PrintHelp lists every flag with its environment variable and default.
func (f *flagSet) PrintHelp() {
	fmt.Fprintf(f.out, "Usage: %s\n\n", f.usage)
	f.fs.VisitAll(func(fl *flag.Flag) {
		name := "--" + fl.Name
		if len(fl.Name) == 1 {
			name = "-" + fl.Name
		}
		arg, help := flag.UnquoteUsage(fl)
		if arg != "" {
			name += " " + arg
		}
		extra := []string{}
		if env := f.envOf[fl.Name]; env != "" {
			extra = append(extra, "env "+env)
		}
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "[]" {
			extra = append(extra, "default "+fl.DefValue)
		}
		line := fmt.Sprintf("  %-28s %s", name, help)
		if len(extra) > 0 {
			line += " (" + strings.Join(extra, "; ") + ")"
		}
		fmt.Fprintln(f.out, line)
	})
}

// errHelp means --help was printed: exit 0.
var errHelp = silentError("help printed")

// stringList is a repeatable flag; a value may also hold several
// comma-separated entries.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
