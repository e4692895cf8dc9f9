package wsgateway

import (
	"testing"
	"time"
)

// BenchmarkSocketHeartbeat: one heartbeat round trip on a joined socket, the reader's path per
// client frame (on Linux: woken by the poller, served, parked again). allocs/op and B/op count
// the client's side too, which is the same gorilla code in every build; so does cpu-us/op, this
// process's CPU time per round trip.
//
//	go test -run '^$' -bench SocketHeartbeat -benchmem ./wsgateway/
func BenchmarkSocketHeartbeat(b *testing.B) {
	tg := startGateway(b, nil)
	c := tg.dial(b, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	b.ReportAllocs()
	from := sampleProc(false)
	for b.Loop() {
		c.sendRaw(`[null,"hb","phoenix","heartbeat",{}]`)
		c.read()
	}
	to := sampleProc(false)
	b.ReportMetric(float64(to.cpu-from.cpu)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}
