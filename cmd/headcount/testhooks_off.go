//go:build !headcount_testhooks

package main

// testHooks reports whether this binary has the testing hooks (testhooks.go):
// a release build has none.
const testHooks = false

func registerTestHooks(*flagSet, *agentFlags) {}
