package wsgateway

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deadlineRecorder is a net.Conn that records the write deadlines set on it.
type deadlineRecorder struct {
	net.Conn // nil: only the deadline methods are called
	writes   []time.Time
}

func (r *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	r.writes = append(r.writes, t)
	return nil
}

func (r *deadlineRecorder) Write(p []byte) (int, error) { return len(p), nil }

func (r *deadlineRecorder) SetDeadline(t time.Time) error {
	r.writes = append(r.writes, t)
	return nil
}

// TestDeadlineConnSkipsSmallExtensions: a write deadline later than the one in force by less
// than the slack is not passed on; the first one, a later one by the slack or more, an
// earlier one (abort's) and none always are.
func TestDeadlineConnSkipsSmallExtensions(t *testing.T) {
	rec := &deadlineRecorder{}
	d := &deadlineConn{Conn: rec, slack: time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		t      time.Time
		passed bool
	}{
		{t0.Add(10 * time.Second), true},                   // none in force
		{t0.Add(10*time.Second + time.Millisecond), false}, // 1 ms later
		{t0.Add(10*time.Second + 999*time.Millisecond), false},
		{t0.Add(11 * time.Second), true}, // the slack later
		{t0.Add(5 * time.Second), true},  // earlier: abort
		{t0.Add(5*time.Second + time.Millisecond), false},
		{time.Time{}, true},              // none
		{t0.Add(20 * time.Second), true}, // none in force again
	}
	want := 0
	for i, s := range steps {
		require.NoError(t, d.setWriteDeadline(s.t))
		if s.passed {
			want++
		}
		require.Len(t, rec.writes, want, "step %d", i)
		if s.passed {
			require.True(t, rec.writes[want-1].Equal(s.t), "step %d passed %v", i, rec.writes[want-1])
		}
	}
	// SetDeadline always passes and becomes the deadline in force.
	require.NoError(t, d.SetDeadline(t0.Add(30*time.Second)))
	require.NoError(t, d.setWriteDeadline(t0.Add(30*time.Second+time.Millisecond)))
	require.Len(t, rec.writes, want+1)
	require.NoError(t, d.SetDeadline(time.Time{}))
	require.NoError(t, d.setWriteDeadline(t0.Add(40*time.Second)))
	require.Len(t, rec.writes, want+3)
}

// TestGorillaDeadlineWaitsForItsWrite: the write deadline gorilla sets before a control frame
// (a pong's is one second) takes effect when that frame is written, under the write mutex,
// not while another frame is still being written: it would cut that write short.
func TestGorillaDeadlineWaitsForItsWrite(t *testing.T) {
	rec := &deadlineRecorder{}
	d := &deadlineConn{Conn: rec, slack: time.Second}
	d.wmu.Lock() // a data frame being written
	pong := time.Now().Add(time.Second)
	require.NoError(t, d.SetWriteDeadline(pong))
	require.Empty(t, rec.writes, "the deadline reached the socket during another frame's write")
	wrote := make(chan error, 1)
	go func() {
		_, err := d.Write([]byte{0x8a, 0})
		wrote <- err
	}()
	d.wmu.Unlock()
	require.NoError(t, <-wrote)
	require.Len(t, rec.writes, 1)
	require.True(t, rec.writes[0].Equal(time.Unix(0, pong.UnixNano())))
}
