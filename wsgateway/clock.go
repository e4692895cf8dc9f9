package wsgateway

import "time"

// Clock is the gateway's source of time: token validity and the expiry of live sockets are
// decided by it, so tests can drive them without sleeping. Its methods are called
// concurrently and must not block.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop cancels the call and
	// reports whether it did (false: f has run or is running).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
