package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time by release builds
// (-ldflags "-X main.version=v1.2.3 -X main.commit=abc123", see
// .goreleaser.yaml and the Dockerfile); when empty, the module version and
// the VCS revision the Go tool recorded in the build info are used.
var (
	version = ""
	commit  = ""
)

// versionString returns the binary's version, commit and Go version.
func versionString() string {
	v, rev, dirty := version, commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				rev = s.Value
			case s.Key == "vcs.modified" && commit == "":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := "headcount " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " " + rev
		if dirty {
			out += "-dirty"
		}
	}
	return out + " " + runtime.Version()
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(e.stdout, versionString())
	return err
}
