// Command headcount is the Headcount binary: a presence-count server node
// (agent), an in-process multi-node demo (demo), the benchmark driver
// (bench), and small clients of the HTTP API (members, count), plus version
// and keygen.
//
// Every flag can also be given as an environment variable HEADCOUNT_<NAME>
// (upper case, dashes as underscores), and the agent's in a --config file
// (keys are the flag names); a flag on the command line wins over the
// variable, which wins over the file. Flags may follow positional
// arguments. Usage errors exit with status 2, runtime errors with 1.
//
// This package only parses, wires and supervises: it must never hold
// presence logic of its own (that lives in tracker, gossip and wsgateway,
// assembled by node).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// env is what a subcommand may touch of the outside world, so that tests can
// run subcommands in-process. Environment variables are read from the
// process (ff reads them there); tests set them with t.Setenv.
type env struct {
	stdout, stderr io.Writer
	// signals delivers SIGINT/SIGTERM to long-running subcommands.
	signals <-chan os.Signal
	// reload delivers SIGHUP: the agent re-reads its gossip and JWT key files.
	reload <-chan os.Signal
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"agent", "run one node of a cluster", runAgent},
		{"demo", "run an in-process cluster with a demo page per node", runDemo},
		{"bench", "measure convergence, failover and WebSocket fan-out", runBench},
		{"members", "print the cluster members seen by a node", runMembers},
		{"count", "print the counts of a topic", runCount},
		{"monitor", "print the counts of a topic live, each time they change", runMonitor},
		{"keygen", "print a new random gossip encryption key", runKeygen},
		{"version", "print the version", runVersion},
	}
}

// usageError marks an error caused by how the command was invoked (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	e := &env{stdout: os.Stdout, stderr: os.Stderr, signals: sig, reload: hup}
	os.Exit(run(context.Background(), e, os.Args[1:]))
}

// run executes the subcommand named by args[0] and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			// "headcount help agent" is "headcount agent -h".
			return run(ctx, e, []string{args[1], "-h"})
		}
		printUsage(e.stdout)
		return 0
	case "-version", "--version", "-v":
		name, args = "version", []string{"version"}
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "headcount %s: %v (see 'headcount %s -h')\n", name, err, name)
			return 2
		default:
			fmt.Fprintf(e.stderr, "headcount %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "headcount: unknown command %q (see 'headcount help')\n", name)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: headcount <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'headcount help <command>' or 'headcount <command> -h' for the flags of a command.")
}

// flagSet is a subcommand's flags with its one-line synopsis for -h.
type flagSet struct {
	*flag.FlagSet
	e        *env
	synopsis string
	// extraEnv are HEADCOUNT_* variables the subcommand reads that are not
	// flags (secrets); see withConfigFile.
	extraEnv []string
}

// newFlagSet returns the flags of the subcommand named by the first word of
// synopsis. Its errors are returned, not printed.
func newFlagSet(e *env, synopsis string) *flagSet {
	name, _, _ := strings.Cut(synopsis, " ")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, e: e, synopsis: synopsis}
}

// parse sets the flags from args, the environment and the config file (see
// parseLayers). Parse errors come back as usage errors; -h prints the usage
// to stdout and returns flag.ErrHelp.
func (fs *flagSet) parse(args []string) error {
	err := fs.parseLayers(args, fs.e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.printUsage(fs.e.stdout)
	}
	return err
}

// printUsage prints the synopsis and every flag of the subcommand to w.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: headcount %s\n\nFlags (each also from %s<NAME>", fs.synopsis, envPrefix)
	if fs.Lookup(configFlag) != nil {
		fmt.Fprint(w, " and from the --config file")
	}
	fmt.Fprint(w, "; flags may follow arguments):\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// noArgs returns a usage error if positional arguments are left.
func (fs *flagSet) noArgs() error {
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", strings.Join(fs.Args(), " "))
	}
	return nil
}
