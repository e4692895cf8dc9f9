//go:build headcount_testhooks

package main

// testHooks reports whether this binary has the testing hooks: built with
// -tags headcount_testhooks, as the e2e suite builds it.
const testHooks = true

// registerTestHooks adds the flags that let the e2e suite stage faults a real
// deployment meets. --test-clock-offset restarts a node as if its wall clock
// had stepped back (NTP, VM migration), which must not matter since
// incarnations are ordered by membership, not epochs (issue 9).
func registerTestHooks(fs *flagSet, a *agentFlags) {
	fs.DurationVar(&a.testClockOffset, "test-clock-offset", 0, "added to the wall clock when choosing the boot epoch (testing hook)")
}
