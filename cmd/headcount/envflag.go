package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// envPrefix is prepended to a flag's upper-cased name (dashes become
// underscores) to form the environment variable that sets it:
// --jwt-secret-file is also read from HEADCOUNT_JWT_SECRET_FILE.
const envPrefix = "HEADCOUNT_"

// envName returns the environment variable that backs the flag called name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets every flag of fs whose environment variable is present in
// env. It runs before fs.Parse, so a flag on the command line wins over the
// environment, which wins over the default. A bad value is reported naming
// the variable.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		v, ok := lookup(envName(name))
		if !ok {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %v", v, envName(name), err)
		}
		if l, ok := fs.Lookup(name).Value.(*listFlag); ok {
			l.fromEnv = true
		}
	}
	return nil
}

// listFlag is a flag that may be repeated and whose values may each be a
// comma-separated list: --join a,b --join c gives [a b c]. Values that came
// from the environment are replaced, not extended, by the command line.
type listFlag struct {
	values  []string
	fromEnv bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.values, ",")
}

func (l *listFlag) Set(s string) error {
	if l.fromEnv {
		l.values, l.fromEnv = nil, false
	}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			l.values = append(l.values, part)
		}
	}
	return nil
}
