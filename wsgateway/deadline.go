package wsgateway

import (
	"net"
	"sync/atomic"
	"time"
)

// deadlineConn is a socket's net.Conn as gorilla sees it. gorilla sets the write deadline
// before every frame, and on Linux each of those is a runtime timer update (3-4% of the
// gateway's CPU in a fan-out, [K]). A deadline later than the one in force by less than slack
// is not worth it: SetWriteDeadline passes t on only when no deadline is in force, when t is
// none or earlier (abort's), or when it is later by slack or more. A write thus gets at least
// its timeout minus slack. SetWriteDeadline and SetDeadline may be called concurrently.
type deadlineConn struct {
	net.Conn
	slack time.Duration
	set   atomic.Int64 // the write deadline in force, UnixNano; 0: none
}

// deadlineSlack is the share of WriteTimeout a write may lose to a deadline not reset.
const deadlineSlack = 10 // slack = WriteTimeout / deadlineSlack

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
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
