package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The batching window stays BroadcastInterval in a small cluster and grows with the live peers in
// a large one, so flushes never cost more than FlushPacketBudget datagrams a second; it never
// exceeds TickInterval, and a budget of 0 turns the bound off.
func TestWindowBoundsFlushDatagrams(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BroadcastInterval = 5 * time.Millisecond
	for _, tc := range []struct {
		live, down, budget int
		want               time.Duration
	}{
		{live: 0, budget: 4000, want: 5 * time.Millisecond},
		{live: 20, budget: 4000, want: 5 * time.Millisecond},
		{live: 40, down: 60, budget: 4000, want: 10 * time.Millisecond}, // only live peers cost
		{live: 127, budget: 4000, want: 31750 * time.Microsecond},
		{live: 999, budget: 4000, want: 50 * time.Millisecond}, // TickInterval flushes anyway
		{live: 999, budget: 0, want: 5 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("live=%d/down=%d/budget=%d", tc.live, tc.down, tc.budget), func(t *testing.T) {
			c := cfg
			c.FlushPacketBudget = tc.budget
			n := &Node{cfg: c, members: map[string]*member{}}
			for i := 0; i < tc.live+tc.down; i++ {
				m := &member{}
				if i < tc.live {
					m.peer = &peer{}
				}
				n.members[fmt.Sprintf("n%d", i)] = m
			}
			w := n.window()
			require.Equal(t, tc.want, w)
			if tc.budget > 0 && w < c.TickInterval {
				require.LessOrEqual(t, float64(tc.live)/w.Seconds(), float64(tc.budget)+1e-6)
			}
		})
	}
}
