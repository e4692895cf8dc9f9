package wsload

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// heartbeater sends a Phoenix heartbeat on every registered socket every interval, as the
// phoenix client does (the gateway closes sockets silent for its idle timeout). A socket is
// registered once it is open; writes go through socket.send, so they never overlap.
type heartbeater struct {
	mu    sync.Mutex
	socks []*socket
	lost  atomic.Int64 // registered sockets the server closed
	stop  chan struct{}
	done  chan struct{}
}

var heartbeatFrame = []byte(`[null,"hb","phoenix","heartbeat",{}]`)

func startHeartbeats(interval time.Duration) *heartbeater {
	h := &heartbeater{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			h.mu.Lock()
			socks := h.socks[:len(h.socks):len(h.socks)]
			h.mu.Unlock()
			for _, s := range socks {
				select {
				case <-h.stop:
					return
				default:
				}
				_ = s.send(heartbeatFrame)
			}
		}
	}()
	return h
}

func (h *heartbeater) add(s *socket) {
	s.lost = &h.lost
	h.mu.Lock()
	h.socks = append(h.socks, s)
	h.mu.Unlock()
}

// wait polls cond like waitUntil, but fails as soon as the server closed a socket.
func (h *heartbeater) wait(ctx context.Context, cond func() bool) error {
	lost := false
	err := waitUntil(ctx, func() bool {
		lost = h.lost.Load() > 0
		return lost || cond()
	})
	if lost {
		return fmt.Errorf("wsload: the gateway closed %d sockets", h.lost.Load())
	}
	return err
}

// halt stops the heartbeats; it must be called before the sockets are closed.
func (h *heartbeater) halt() {
	close(h.stop)
	<-h.done
}
