package wsgateway

import (
	"testing"
)

// BenchmarkSocketHeartbeat: one heartbeat round trip on a joined socket, the reader's path per
// client frame (on Linux: woken by the poller, served, parked again). allocs/op and B/op count
// the client's side too, which is the same gorilla code in every build.
//
//	go test -run '^$' -bench SocketHeartbeat -benchmem ./wsgateway/
func BenchmarkSocketHeartbeat(b *testing.B) {
	tg := startGateway(b, nil)
	c := tg.dial(b, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	b.ReportAllocs()
	for b.Loop() {
		c.sendRaw(`[null,"hb","phoenix","heartbeat",{}]`)
		c.read()
	}
}
