package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// configFlag is the flag naming a subcommand's config file. A subcommand has
// a config file when it registers this flag (withConfigFile).
const configFlag = "config"

// withConfigFile registers --config on fs: a YAML (or, named *.json, JSON)
// file whose keys are the flag names without dashes. It also turns on the
// warnings about unknown HEADCOUNT_* variables, which only make sense for a
// subcommand that owns the whole environment (the agent). extraEnv names the
// variables of fs that are not flags (secrets read from the environment).
func (fs *flagSet) withConfigFile(extraEnv ...string) {
	fs.String(configFlag, "", "config file (YAML, or JSON when named *.json): keys are the flag names, e.g. http: 127.0.0.1:4000; flags and "+envPrefix+"* variables win over it")
	fs.extraEnv = append(fs.extraEnv, extraEnv...)
}

// parseLayers sets the flags of fs from, in order of precedence, the command
// line, HEADCOUNT_<NAME> variables, the --config file (when fs has one) and
// the defaults; ff does the layering. Flags may follow positional
// arguments. Unknown config keys and, for a subcommand with a config file,
// unknown HEADCOUNT_* variables are reported to warn, one line each.
func (fs *flagSet) parseLayers(args []string, warn io.Writer) error {
	var warnings []string
	opts := []ff.Option{ff.WithEnvVarPrefix(strings.TrimSuffix(envPrefix, "_"))}
	hasConfig := fs.Lookup(configFlag) != nil
	if hasConfig {
		opts = append(opts,
			ff.WithConfigFileFlag(configFlag),
			ff.WithConfigFileParser(fs.configParser(&warnings)))
	}
	err := ff.Parse(fs.FlagSet, interspersed(fs.FlagSet, args), opts...)
	if err != nil {
		return parseError(err)
	}
	if hasConfig {
		warnings = append(warnings, fs.unknownEnv(os.Environ())...)
	}
	sort.Strings(warnings)
	for _, w := range warnings {
		fmt.Fprintf(warn, "headcount %s: warning: %s\n", fs.Name(), w)
	}
	return nil
}

// configFileError is a config file that could not be read or decoded, or a
// key whose value its flag refused.
type configFileError struct {
	path string
	err  error
}

func (c configFileError) Error() string { return "--config " + c.path + ": " + c.err.Error() }
func (c configFileError) Unwrap() error { return c.err }

// parseError turns an error of ff.Parse into the one line the user sees: a
// usage error, except a config file that cannot be opened (exit 1, like an
// unreadable key file).
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	var cfe configFileError
	if errors.As(err, &cfe) {
		return usageError{cfe}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("--config %s: %w", pe.Path, pe.Err)
	}
	// ff prefixes "error parsing commandline arguments: " and the like;
	// the flag package's own message already names the flag or variable.
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return usageError{err}
}

// configParser returns the ff parser of fs's config file: YAML, or JSON for
// a *.json file. A key that is not a flag of fs is not an error but a
// warning appended to warnings (a newer config on an older binary must
// still start).
func (fs *flagSet) configParser(warnings *[]string) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		path := fs.Lookup(configFlag).Value.String()
		parse := ffyaml.Parser
		if strings.EqualFold(filepath.Ext(path), ".json") {
			parse = ff.JSONParser
		}
		unknown := map[string]bool{}
		err := parse(r, func(name, value string) error {
			if name == configFlag || fs.Lookup(name) == nil {
				unknown[name] = true
				return nil
			}
			return set(name, value)
		})
		for name := range unknown {
			*warnings = append(*warnings, fmt.Sprintf("--config %s: unknown key %q ignored (keys are the flag names of 'headcount %s -h')", path, name, fs.Name()))
		}
		if err != nil {
			return configFileError{path: path, err: err}
		}
		return nil
	}
}

// unknownEnv returns a warning for every HEADCOUNT_* variable of environ
// that sets no flag of fs and is not one of fs's extra variables: most
// likely a typo, which would otherwise be silently ignored.
func (fs *flagSet) unknownEnv(environ []string) []string {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	for _, name := range fs.extraEnv {
		known[name] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			out = append(out, fmt.Sprintf("environment variable %s is not a setting of 'headcount %s' and is ignored", name, fs.Name()))
		}
	}
	return out
}

// interspersed returns args with every flag moved in front of the
// positional arguments, so that "count lobby --addr X" parses as
// "count --addr X lobby" (the flag package stops at the first positional
// argument). It needs no knowledge of particular flags: a flag takes the
// next argument as its value unless it is written -name=value or is a
// boolean flag. Everything after "--" stays positional.
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) == 0 {
		return flags
	}
	return append(append(flags, "--"), positional...)
}

// isBoolFlag reports whether f is set by its name alone (-demo-tokens).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
