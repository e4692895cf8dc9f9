//go:build !race

package webhook_test

// simDefaultRuns is how many simulator schedules a plain test run plays.
const simDefaultRuns = 300
