//go:build !race

package e2e

// raceBuild is true when the tests run with -race (see race_on_test.go).
const raceBuild = false
