package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
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

// The flush token bucket's law, for any arrival pattern of changes as the worker handles them and
// timers that fire late (a loaded machine): over any span between two flushes at t_i and t_j the
// node flushes at most flushBurst + (t_j - t_i) / window times, a change waits at most one
// window for its token, and a flush that waited is followed by none within one window, however
// late its timer fired (no catching up with flushes of a few ops).
func TestFlushPacerBoundsFlushesInAnySpan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := time.Duration(rapid.IntRange(1, 50).Draw(t, "window_ms")) * time.Millisecond
		wus := int(w / time.Microsecond)
		gaps := rapid.SliceOfN(rapid.IntRange(0, 2*wus), 1, 300).Draw(t, "gaps_us")
		late := rapid.SliceOfN(rapid.IntRange(0, 2*wus), len(gaps), len(gaps)).Draw(t, "timer_late_us")
		var p flushPacer
		var flushes []time.Time
		var waited []bool
		now := time.Unix(1_700_000_000, 0)
		due := time.Time{} // when the armed timer fires, zero = none
		for k, g := range gaps {
			now = now.Add(time.Duration(g) * time.Microsecond)
			if !due.IsZero() && !due.After(now) { // the armed timer fired first
				p.take(due, w, true)
				flushes, waited = append(flushes, due), append(waited, true)
				due = time.Time{}
			}
			if !due.IsZero() {
				continue // this change joins the armed flush
			}
			if d := p.wait(now, w); d > 0 {
				if d > w {
					t.Fatalf("a change waits %v, more than one window %v", d, w)
				}
				due = now.Add(d + time.Duration(late[k])*time.Microsecond)
				continue
			}
			p.take(now, w, false)
			flushes, waited = append(flushes, now), append(waited, false)
		}
		for i := 1; i < len(flushes); i++ {
			if waited[i-1] && flushes[i].Sub(flushes[i-1]) < w {
				t.Fatalf("a flush %v after one that waited (window %v)", flushes[i].Sub(flushes[i-1]), w)
			}
		}
		for i := range flushes {
			for j := i; j < len(flushes); j++ {
				n, span := j-i+1, flushes[j].Sub(flushes[i])
				if limit := flushBurst + int(span/w); n > limit {
					t.Fatalf("%d flushes within %v (window %v), at most %d", n, span, w, limit)
				}
			}
		}
	})
}
