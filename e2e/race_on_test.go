//go:build race

package e2e

// raceBuild is true when the tests run with -race: the agents are then built
// with the race detector too, so a data race in the real binary fails CI.
const raceBuild = true
