package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit statuses, as kubectl and consul use them.
const (
	exitOK      = 0 // done; the state asked about is healthy
	exitFailed  = 1 // the request failed, or the state is unhealthy
	exitUsage   = 2 // unknown command or flag, missing or bad argument
	programName = "tern"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usage error (exit status 2).
func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// run runs tern with args (without the program's name) and returns its
// exit status. Every error is written to stderr here, once.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	prepare(app)
	argv, err := args, error(nil)
	if n := len(args); n == 0 || args[n-1] != "--generate-bash-completion" { // completion reads the line as typed
		argv, err = arrange(app, args)
	}
	if err == nil {
		err = app.RunContext(ctx, append([]string{programName}, argv...))
	}
	return exitStatus(stderr, err)
}

// prepare makes urfave/cli hand every error back to run (which alone
// prints it and picks the exit status) and names the global flags in
// every command's help.
func prepare(app *cli.App) {
	app.ExitErrHandler = func(*cli.Context, error) {}
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err.Error()} }
	app.OnUsageError = onUsage
	var global strings.Builder
	global.WriteString("\nGLOBAL OPTIONS (before or after the command):\n")
	for _, f := range app.Flags {
		global.WriteString("   " + f.String() + "\n")
	}
	walk(app.Commands, func(_ []string, c *cli.Command) {
		c.OnUsageError = onUsage
		if c.CustomHelpTemplate == "" {
			c.CustomHelpTemplate = cli.CommandHelpTemplate + global.String()
			if len(c.Subcommands) > 0 {
				c.CustomHelpTemplate = cli.SubcommandHelpTemplate + global.String()
			}
		}
	})
}

// walk calls fn for every command below cmds, parents first, with the
// names of the commands above it.
func walk(cmds []*cli.Command, fn func(path []string, c *cli.Command)) {
	var rec func(path []string, cmds []*cli.Command)
	rec = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			fn(path, c)
			rec(append(slices.Clone(path), c.Name), c.Subcommands)
		}
	}
	rec(nil, cmds)
}

// exitStatus writes err (if any) and returns the exit status it means.
func exitStatus(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintf(w, "%s: %s\n", programName, u.msg)
		return exitUsage
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(w, "%s: %s\n", programName, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(w, "%s: %v\n", programName, err)
	return exitFailed
}

// arrange rewrites a command line the way kubectl, git and consul read
// theirs, into the one urfave/cli v2 reads (flags of each command right
// after its name, then the arguments): flags may stand anywhere, before
// or after the arguments and before or after the command names; `--`
// ends the flags; `tern help CMD...` is `tern CMD... --help`. A flag goes
// to the deepest command on the path that defines it (the global ones,
// --api, --token, --ca, are the app's). Unknown commands and flags,
// missing flag values and missing required flags are usage errors.
func arrange(app *cli.App, args []string) ([]string, error) {
	type pending struct {
		name string
		toks []string
	}
	var (
		path  []*cli.Command // the commands named, outermost first
		flags []pending
		pos   []string
		help  bool
	)
	subs := app.Commands
	if len(args) > 0 && args[0] == "help" {
		help, args = true, args[1:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if name == "h" || name == "help" {
				help = true
				continue
			}
			f := findFlag(name, app, path)
			if f == nil {
				return nil, usagef("unknown flag %s%s", a, helpHint(path))
			}
			p := pending{name: name, toks: []string{a}}
			if takesValue(f) && !inline {
				if i+1 >= len(args) {
					return nil, usagef("flag %s needs a value%s", a, helpHint(path))
				}
				i++
				p.toks = append(p.toks, args[i])
			}
			flags = append(flags, p)
			continue
		}
		if len(subs) > 0 && len(pos) == 0 {
			c := findCommand(subs, a)
			if c == nil {
				return nil, usagef("unknown command %q for %s; the commands are %s%s", a, commandName(path), strings.Join(visibleNames(subs), ", "), helpHint(path))
			}
			path = append(path, c)
			subs = c.Subcommands
			continue
		}
		pos = append(pos, a)
	}
	// Each flag to the deepest command that defines it, else the app.
	levels := make([][]string, len(path)+1)
	given := map[string]bool{}
	for _, p := range flags {
		at := 0
		for d := len(path); d > 0; d-- {
			if hasFlag(path[d-1].Flags, p.name) {
				at = d
				break
			}
		}
		if at == 0 && !hasFlag(app.Flags, p.name) {
			return nil, usagef("flag -%s is not one of %s's%s", strings.TrimLeft(p.toks[0], "-"), commandName(path), helpHint(path))
		}
		levels[at] = append(levels[at], p.toks...)
		given[canonical(p.name, app, path)] = true
	}
	if help {
		levels[len(path)] = append(levels[len(path)], "--help")
	} else if err := needs(path, given); err != nil {
		return nil, err
	}
	out := slices.Clone(levels[0])
	for d, c := range path {
		out = append(out, c.Name)
		out = append(out, levels[d+1]...)
	}
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out, nil
}

// needs checks that a command was named down to one that runs, and that
// its required flags are given (on the line or in their environment
// variables).
func needs(path []*cli.Command, given map[string]bool) error {
	if len(path) == 0 {
		return nil // the app's own action: --version, or a usage error
	}
	leaf := path[len(path)-1]
	if len(leaf.Subcommands) > 0 && leaf.Action == nil {
		return usagef("%s needs a command: %s%s", commandName(path), strings.Join(visibleNames(leaf.Subcommands), ", "), helpHint(path))
	}
	for _, f := range leaf.Flags {
		r, ok := f.(cli.RequiredFlag)
		if !ok || !r.IsRequired() || given[f.Names()[0]] || fromEnv(f) {
			continue
		}
		return usagef("%s needs --%s%s", commandName(path), f.Names()[0], helpHint(path))
	}
	return nil
}

func fromEnv(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return false
	}
	for _, e := range d.GetEnvVars() {
		if _, set := os.LookupEnv(e); set {
			return true
		}
	}
	return false
}

// findFlag returns the flag called name that a command on path (deepest
// first) or the app defines, else one a command below the path defines
// (the command it belongs to may come later on the line).
func findFlag(name string, app *cli.App, path []*cli.Command) cli.Flag {
	for d := len(path) - 1; d >= 0; d-- {
		if f := flagNamed(path[d].Flags, name); f != nil {
			return f
		}
	}
	if f := flagNamed(app.Flags, name); f != nil {
		return f
	}
	below := app.Commands
	if len(path) > 0 {
		below = path[len(path)-1].Subcommands
	}
	var found cli.Flag
	walk(below, func(_ []string, c *cli.Command) {
		if found == nil {
			found = flagNamed(c.Flags, name)
		}
	})
	return found
}

func flagNamed(fs []cli.Flag, name string) cli.Flag {
	for _, f := range fs {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func hasFlag(fs []cli.Flag, name string) bool { return flagNamed(fs, name) != nil }

// canonical is the first name of the flag called name where it applies.
func canonical(name string, app *cli.App, path []*cli.Command) string {
	if f := findFlag(name, app, path); f != nil {
		return f.Names()[0]
	}
	return name
}

// takesValue reports whether f reads the next argument as its value.
func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func visibleNames(cmds []*cli.Command) []string {
	var out []string
	for _, c := range cmds {
		if !c.Hidden {
			out = append(out, c.Name)
		}
	}
	return out
}

// commandName is "tern member drain" for a path.
func commandName(path []*cli.Command) string {
	names := []string{programName}
	for _, c := range path {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}

func helpHint(path []*cli.Command) string {
	return " (see " + commandName(path) + " --help)"
}
