package wsgateway

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stretchr/testify/require"
)

// observe sends a V2 observer join with join_ref == ref == jr and checks the reply.
func (c *client) observe(topic, jr string) {
	c.t.Helper()
	c.sendRaw(fmt.Sprintf(`[%q,%q,%q,"phx_join",{"observe":true}]`, jr, jr, topic))
	c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"ok","response":{}}]`, jr, jr, topic))
}

func errorReply(jr, topic, reason string) string {
	return fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"error","response":{"reason":%q}}]`, jr, jr, topic, reason)
}

func TestObserverCountsNoOne(t *testing.T) {
	tg := startGateway(t, nil)
	a := tg.dial(t, "vsn=2.0.0")
	a.join("room:a", "1")
	a.expect(stateFrame("1", "room:a", 1, 0))

	o := tg.dial(t, "vsn=2.0.0")
	o.observe("room:a", "1")
	o.expect(stateFrame("1", "room:a", 1, 0)) // a, not a and the observer
	require.Equal(t, 1, tg.tr.Stats().Presences)
	seq := tg.tr.Replicas()[0].Seq
	o.observe("room:b", "2")
	o.expect(stateFrame("2", "room:b", 0, 0))
	require.Equal(t, seq, tg.tr.Replicas()[0].Seq, "an observer writes nothing to the replicated state")

	b := tg.dial(t, "vsn=2.0.0&token="+token(t, "alice", time.Hour))
	b.join("room:a", "1")
	b.expect(stateFrame("1", "room:a", 1, 1))
	o.expect(diffFrame("room:a", 0, 1, 0, 0)) // the seed reducer's shape, unchanged
	require.NoError(t, b.ws.Close())
	o.expect(diffFrame("room:a", 0, 0, 0, 1))
	require.Equal(t, 1, tg.tr.Stats().Presences)
}

func TestRollupObserveOnly(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.sendRaw(`["1","1","video:*","phx_join",{}]`)
	c.expect(errorReply("1", "video:*", "observe only"))
	c.sendRaw(`["2","2","*","phx_join",{"observe":false}]`)
	c.expect(errorReply("2", "*", "observe only"))
}

func TestRollupObserverDistinctCounts(t *testing.T) {
	tg := startGateway(t, nil)
	oc := tg.dial(t, "vsn=2.0.0")
	o := &watcher{client: oc, counts: map[string][2]int{}}
	alice := tg.dial(t, "vsn=2.0.0&token="+token(t, "alice", time.Hour))
	alice.join("video:1", "1")
	alice.expect(stateFrame("1", "video:1", 0, 1))
	o.observe("video:*", "1")
	o.expect(stateFrame("1", "video:*", 0, 1))
	o.observe("*", "2")
	o.expect(stateFrame("2", "*", 0, 1))
	o.counts["video:*"], o.counts["*"] = [2]int{0, 1}, [2]int{0, 1}

	alice.join("video:2", "2") // alice on two videos is one user of video:*
	alice.expect(stateFrame("2", "video:2", 0, 1))
	anon := tg.dial(t, "vsn=2.0.0")
	anon.join("video:1", "1")
	anon.expect(stateFrame("1", "video:1", 1, 1))
	anon.join("live:1", "2")
	anon.expect(stateFrame("2", "live:1", 1, 0))
	o.expectEventually("video:*", 1, 1)
	o.expectEventually("*", 1, 1) // one anonymous connection in two topics is one viewer
	require.Equal(t, 4, tg.tr.Stats().Presences)

	require.NoError(t, anon.ws.Close())
	o.expectEventually("video:*", 0, 1)
}

func TestObserverLimits(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxChannels = 1; c.MaxObserved = 2 })
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	c.sendRaw(`["2","2","room:b","phx_join",{}]`)
	c.expect(errorReply("2", "room:b", "too many channels"))
	c.observe("room:b", "3")
	c.expect(stateFrame("3", "room:b", 0, 0))
	c.observe("room:c", "4")
	c.expect(stateFrame("4", "room:c", 0, 0))
	c.sendRaw(`["5","5","room:d","phx_join",{"observe":true}]`)
	c.expect(errorReply("5", "room:d", "too many observed channels"))
	// Leaving an observer frees its slot, not a tracked one.
	c.sendRaw(`["3","6","room:b","phx_leave",{}]`)
	c.expect(`["3","6","room:b","phx_reply",{"status":"ok","response":{}}]`)
	c.expect(`["3","3","room:b","phx_close",{}]`)
	c.observe("room:d", "7")
	c.expect(stateFrame("7", "room:d", 0, 0))
	require.Equal(t, 1, tg.tr.Stats().Presences)
}

func TestObserverJoinBucket(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.ObserveJoinRate = 0.001; c.ObserveJoinBurst = 1 })
	c := tg.dial(t, "vsn=2.0.0")
	c.observe("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 0))
	c.sendRaw(`["2","2","room:b","phx_join",{"observe":true}]`)
	c.expect(errorReply("2", "room:b", "too many joins"))
	c.join("room:c", "3") // tracked joins have a bucket of their own
	c.expect(stateFrame("3", "room:c", 1, 0))
}

// TestListPageReconnectJoinsEverything: with the default limits, a page holding 100 tracked
// and 1,000 observed channels that (re)connects gets every join accepted at once.
func TestListPageReconnectJoinsEverything(t *testing.T) {
	tg := startGateway(t, nil)
	cfg := DefaultConfig()
	c := tg.dial(t, "vsn=2.0.0")
	n := cfg.MaxObserved + cfg.MaxChannels
	sent := make(chan error, 1)
	go func() { // a browser reads while it sends
		var err error
		for i := 1; i <= n && err == nil; i++ {
			msg := fmt.Sprintf(`["%d","%d","video:%d","phx_join",{"observe":true}]`, i, i, i)
			if i > cfg.MaxObserved {
				msg = fmt.Sprintf(`["%d","%d","room:%d","phx_join",{}]`, i, i, i)
			}
			err = c.ws.WriteMessage(websocket.TextMessage, []byte(msg))
		}
		sent <- err
	}()
	for i := 1; i <= n; i++ {
		got := c.read()
		require.Contains(t, got, `"phx_reply",{"status":"ok"`, "join %d", i)
		got = c.read()
		require.Contains(t, got, `"presence_state"`)
	}
	require.NoError(t, <-sent)
	require.Equal(t, cfg.MaxChannels, tg.tr.Stats().Presences)
}

func TestDuplicateJoinSwitchesMode(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	c.sendRaw(`["2","2","room:a","phx_join",{"observe":true}]`)
	c.expect(`["1","1","room:a","phx_close",{}]`)
	c.expect(`["2","2","room:a","phx_reply",{"status":"ok","response":{}}]`)
	c.expect(stateFrame("2", "room:a", 0, 0))
	require.Equal(t, 0, tg.tr.Stats().Presences)
	c.sendRaw(`["3","3","room:a","phx_join",{}]`)
	c.expect(`["2","2","room:a","phx_close",{}]`)
	c.expect(`["3","3","room:a","phx_reply",{"status":"ok","response":{}}]`)
	c.expect(stateFrame("3", "room:a", 1, 0))
	require.Equal(t, 1, tg.tr.Stats().Presences)
}

// watcher applies presence_state and presence_diff frames as the seed article's reducer does.
type watcher struct {
	*client
	counts map[string][2]int // topic -> viewers, users
}

// expectEventually reads frames until topic's counts are viewers and users.
func (w *watcher) expectEventually(topic string, viewers, users int) {
	w.t.Helper()
	type class struct {
		Count int `json:"count"`
	}
	type counts struct{ Viewers, Users class }
	for w.counts[topic] != [2]int{viewers, users} {
		var frame [5]json.RawMessage
		require.NoError(w.t, json.Unmarshal([]byte(w.read()), &frame))
		var tp, event string
		require.NoError(w.t, json.Unmarshal(frame[2], &tp))
		require.NoError(w.t, json.Unmarshal(frame[3], &event))
		switch event {
		case "presence_state":
			var c counts
			require.NoError(w.t, json.Unmarshal(frame[4], &c))
			w.counts[tp] = [2]int{c.Viewers.Count, c.Users.Count}
		case "presence_diff":
			var d struct{ Joins, Leaves counts }
			require.NoError(w.t, json.Unmarshal(frame[4], &d))
			old := w.counts[tp]
			w.counts[tp] = [2]int{old[0] + d.Joins.Viewers.Count - d.Leaves.Viewers.Count, old[1] + d.Joins.Users.Count - d.Leaves.Users.Count}
		}
	}
}
