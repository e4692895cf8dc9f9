package main

import (
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

// listFlag is a flag that may be repeated and whose values may each be a
// comma-separated list: --join a,b --join c gives [a b c]. A list given on
// the command line replaces, not extends, one from the environment or the
// config file: each layer is only read for flags the ones above left unset.
type listFlag struct {
	values []string
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.values, ",")
}

func (l *listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			l.values = append(l.values, part)
		}
	}
	return nil
}
