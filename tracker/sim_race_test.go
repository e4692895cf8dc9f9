//go:build race

package tracker_test

// defaultSchedules is smaller under the race detector, which slows the
// simulator about tenfold; CI also runs the full count without it.
const defaultSchedules = 150
