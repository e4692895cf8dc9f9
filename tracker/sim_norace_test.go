//go:build !race

package tracker_test

// defaultSchedules is how many simulator schedules a plain test run plays.
const defaultSchedules = 1000
