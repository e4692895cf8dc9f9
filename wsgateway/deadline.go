package wsgateway

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineConn is a socket's net.Conn as gorilla sees it. It serializes writes: the gateway's
// own data frames (written with wmu held, some by a fan-out writer that hands the mutex on to
// a goroutine mid-frame, writers.go) and gorilla's control frames (pongs, close frames), which
// gorilla writes with one Write call each, so frames never interleave. For the same reason a
// write deadline gorilla sets takes effect at its next Write, under wmu: a pong's one-second
// deadline must not cut short a data frame being written.
//
// Deadlines are runtime timer updates (3-4% of the gateway's CPU in a fan-out when set per
// frame, [K]), so setWriteDeadline passes t on only when no deadline is in force, when t is
// none or earlier, or when it is later by slack or more: a write gets at least its timeout
// minus slack.
type deadlineConn struct {
	net.Conn
	slack time.Duration
	set   atomic.Int64 // the write deadline in force, UnixNano; 0: none
	asked atomic.Int64 // gorilla's SetWriteDeadline for its next Write: UnixNano, noDeadline, or 0 (none asked)
	wmu   sync.Mutex   // held while a frame is being written
}

// noDeadline in deadlineConn.asked: gorilla asked for no write deadline.
const noDeadline = -1

// deadlineSlack is the share of WriteTimeout a write may lose to a deadline not reset.
const deadlineSlack = 10 // slack = WriteTimeout / deadlineSlack

// SetWriteDeadline records gorilla's deadline for its next Write.
func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		d.asked.Store(noDeadline)
	} else {
		d.asked.Store(t.UnixNano())
	}
	return nil
}

// Write writes p (one of gorilla's frames) under the write mutex, with the deadline gorilla
// asked for.
func (d *deadlineConn) Write(p []byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	switch ns := d.asked.Swap(0); ns {
	case 0:
	case noDeadline:
		if err := d.setWriteDeadline(time.Time{}); err != nil {
			return 0, err
		}
	default:
		if err := d.setWriteDeadline(time.Unix(0, ns)); err != nil {
			return 0, err
		}
	}
	return d.Conn.Write(p)
}

// writeLocked writes all of p, waiting at most about timeout. Called with wmu held.
func (d *deadlineConn) writeLocked(p []byte, timeout time.Duration) error {
	if err := d.setWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := d.Conn.Write(p)
	return err
}

// setWriteDeadline sets the write deadline now, unless it is later than the one in force by
// less than slack. It may be called without wmu (abort's, to cut a blocked write short).
func (d *deadlineConn) setWriteDeadline(t time.Time) error {
	if t.IsZero() {
		d.set.Store(0)
		return d.Conn.SetWriteDeadline(t)
	}
	ns := t.UnixNano()
	if cur := d.set.Load(); cur != 0 && ns >= cur && ns-cur < int64(d.slack) {
		return nil
	}
	d.set.Store(ns)
	return d.Conn.SetWriteDeadline(t)
}

func (d *deadlineConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		d.set.Store(0)
	} else {
		d.set.Store(t.UnixNano())
	}
	return d.Conn.SetDeadline(t)
}
