package wsgateway

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// step is one action of a protocol script: send a frame, expect a frame, or expect the server
// to close the socket with a code.
type step struct {
	send, binary, expect string
	closeCode            int
}

func send(s string) step   { return step{send: s} }
func expect(s string) step { return step{expect: s} }
func closed(code int) step { return step{closeCode: code} }

const okEmpty = `{"status":"ok","response":{}}`

// script is one protocol test: a socket dialed with query ("" = vsn=2.0.0, "-" = none) on a
// gateway adjusted by config runs steps.
type script struct {
	name   string
	query  string
	config func(*Config)
	steps  []step
}

func TestProtocolScripts(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := []script{
		{name: "heartbeat V2", steps: []step{
			send(`[null,"1","phoenix","heartbeat",{}]`),
			expect(`[null,"1","phoenix","phx_reply",` + okEmpty + `]`),
		}},
		{name: "heartbeat V1 (vsn missing)", query: "-", steps: []step{
			send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`),
			expect(`{"join_ref":null,"ref":"1","topic":"phoenix","event":"phx_reply","payload":` + okEmpty + `}`),
		}},
		{name: "join V1 gets state", query: "vsn=1.0.0", steps: []step{
			send(`{"topic":"room:a","event":"phx_join","payload":{},"ref":"7","join_ref":"7"}`),
			expect(`{"join_ref":"7","ref":"7","topic":"room:a","event":"phx_reply","payload":` + okEmpty + `}`),
			expect(`{"join_ref":"7","ref":null,"topic":"room:a","event":"presence_state","payload":{"viewers":{"count":1},"users":{"count":0}}}`),
		}},
		{name: "join V2 gets reply then state", steps: []step{
			send(`["3","3","room:a","phx_join",{}]`),
			expect(`["3","3","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("3", "room:a", 1, 0)),
		}},
		{name: "join asking for connections", steps: []step{
			send(`["3","3","room:a","phx_join",{"connections":true}]`),
			expect(`["3","3","room:a","phx_reply",` + okEmpty + `]`),
			expect(`["3",null,"room:a","presence_state",{"viewers":{"count":1},"users":{"count":0},"connections":{"count":1}}]`),
		}},
		{name: "join with null payload", steps: []step{
			send(`["3","3","room:a","phx_join",null]`),
			expect(`["3","3","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("3", "room:a", 1, 0)),
		}},
		{name: "leave replies then closes", steps: []step{
			send(`["1","1","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("1", "room:a", 1, 0)),
			send(`["1","2","room:a","phx_leave",{}]`),
			expect(`["1","2","room:a","phx_reply",` + okEmpty + `]`),
			expect(`["1","1","room:a","phx_close",{}]`),
			// joined again: counted once, not twice
			send(`["4","4","room:a","phx_join",{}]`),
			expect(`["4","4","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("4", "room:a", 1, 0)),
		}},
		{name: "leave of an unjoined topic is ok", steps: []step{
			send(`["5","5","room:z","phx_leave",{}]`),
			expect(`["5","5","room:z","phx_reply",` + okEmpty + `]`),
		}},
		{name: "push to an unjoined topic", steps: []step{
			send(`[null,"3","room:q","shout",{}]`),
			expect(`[null,"3","room:q","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`),
		}},
		{name: "stale join_ref is unmatched", steps: []step{
			send(`["1","1","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("1", "room:a", 1, 0)),
			send(`["9","4","room:a","shout",{}]`),
			expect(`[null,"4","room:a","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]`),
			send(`["1","5","room:a","shout",{}]`),
			expect(`["1","5","room:a","phx_reply",{"status":"error","response":{"reason":"unknown event"}}]`),
		}},
		{name: "duplicate join closes the old channel", steps: []step{
			send(`["1","1","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("1", "room:a", 1, 0)),
			send(`["2","2","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_close",{}]`),
			expect(`["2","2","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("2", "room:a", 1, 0)),
		}},
		{name: "topic too long", steps: []step{
			send(`["1","1","` + long + `","phx_join",{}]`),
			expect(`["1","1","` + long + `","phx_reply",{"status":"error","response":{"reason":"topic too long"}}]`),
		}},
		{name: "empty topic", steps: []step{
			send(`["1","1","","phx_join",{}]`),
			expect(`["1","1","","phx_reply",{"status":"error","response":{"reason":"invalid topic"}}]`),
		}},
		{name: "join params not an object", steps: []step{
			send(`["1","1","room:a","phx_join",[1]]`),
			expect(`["1","1","room:a","phx_reply",{"status":"error","response":{"reason":"invalid join params"}}]`),
		}},
		{name: "too many channels", config: func(c *Config) { c.MaxChannels = 1 }, steps: []step{
			send(`["1","1","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("1", "room:a", 1, 0)),
			send(`["2","2","room:b","phx_join",{}]`),
			expect(`["2","2","room:b","phx_reply",{"status":"error","response":{"reason":"too many channels"}}]`),
		}},
		{name: "too many joins", config: func(c *Config) { c.JoinRate = 0.001; c.JoinBurst = 1 }, steps: []step{
			send(`["1","1","room:a","phx_join",{}]`),
			expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`),
			expect(stateFrame("1", "room:a", 1, 0)),
			send(`["2","2","room:b","phx_join",{}]`),
			expect(`["2","2","room:b","phx_reply",{"status":"error","response":{"reason":"too many joins"}}]`),
		}},
		{name: "not JSON", steps: []step{send(`hello`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "wrong arity", steps: []step{send(`[null,"1","phoenix","heartbeat"]`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "ref of the wrong type", steps: []step{send(`[null,1,"phoenix","heartbeat",{}]`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "topic of the wrong type", steps: []step{send(`[null,"1",7,"heartbeat",{}]`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "V1 frame on a V2 socket", steps: []step{send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "V2 frame on a V1 socket", query: "vsn=1.0.0", steps: []step{send(`[null,"1","phoenix","heartbeat",{}]`), closed(websocket.CloseInvalidFramePayloadData)}},
		{name: "binary garbage", steps: []step{{binary: "\x00\x01\x02\xff"}, closed(websocket.CloseUnsupportedData)}},
		{name: "frame too big", config: func(c *Config) { c.MaxFrameBytes = 64 }, steps: []step{
			send(`[null,"1","phoenix","heartbeat",{"pad":"` + strings.Repeat("p", 100) + `"}]`),
			closed(websocket.CloseMessageTooBig),
		}},
	}
	cases = append(cases, script{name: "user id longer than the tracker takes", config: func(c *Config) { c.MaxUserBytes = 2000 }, query: "vsn=2.0.0&token=" + token(t, strings.Repeat("u", 300), time.Hour), steps: []step{
		send(`["1","1","room:a","phx_join",{}]`),
		expect(`["1","1","room:a","phx_reply",{"status":"error","response":{"reason":"invalid user"}}]`),
	}}, script{name: "topic longer than the tracker takes", config: func(c *Config) { c.MaxTopicBytes = 2000 }, steps: []step{
		send(`["1","1","` + strings.Repeat("t", 1500) + `","phx_join",{}]`),
		expect(`["1","1","` + strings.Repeat("t", 1500) + `","phx_reply",{"status":"error","response":{"reason":"invalid topic"}}]`),
	}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, tc.config)
			q := tc.query
			switch q {
			case "":
				q = "vsn=2.0.0"
			case "-":
				q = ""
			}
			c := tg.dial(t, q)
			for _, s := range tc.steps {
				switch {
				case s.send != "":
					c.sendRaw(s.send)
				case s.binary != "":
					require.NoError(t, c.ws.WriteMessage(websocket.BinaryMessage, []byte(s.binary)))
				case s.expect != "":
					c.expect(s.expect)
				case s.closeCode != 0:
					require.Equal(t, s.closeCode, c.expectClose())
				}
			}
			if tc.steps[len(tc.steps)-1].closeCode != 0 {
				// The bad socket's presences are gone and the gateway still serves others.
				require.Eventually(t, func() bool { return tg.g.Connections() == 0 }, waitFor, 10*time.Millisecond)
				other := tg.dial(t, "vsn=2.0.0")
				other.join("room:a", "1")
				other.expect(stateFrame("1", "room:a", 1, 0))
			}
		})
	}
}

// TestDiffsBetweenClients checks the counts other sockets see: anonymous viewers, users, and
// two tabs of one user counted once.
func TestDiffsBetweenClients(t *testing.T) {
	tg := startGateway(t, nil)
	a := tg.dial(t, "vsn=2.0.0")
	a.join("room:a", "1")
	a.expect(stateFrame("1", "room:a", 1, 0))

	b := tg.dial(t, "vsn=2.0.0")
	b.join("room:a", "1")
	b.expect(stateFrame("1", "room:a", 2, 0))
	a.expect(diffFrame("room:a", 1, 0, 0, 0))

	alice1 := tg.dial(t, "vsn=2.0.0&token="+token(t, "alice", time.Hour))
	alice1.join("room:a", "1")
	alice1.expect(stateFrame("1", "room:a", 2, 1))
	a.expect(diffFrame("room:a", 0, 1, 0, 0))
	b.expect(diffFrame("room:a", 0, 1, 0, 0))

	// A second tab of alice changes no count, so nobody gets a diff: the next frame a, b and
	// alice1 read is the one for b's leave below.
	alice2 := tg.dial(t, "vsn=2.0.0&token="+token(t, "alice", time.Hour))
	alice2.join("room:a", "1")
	alice2.expect(stateFrame("1", "room:a", 2, 1))

	b.sendRaw(`["1","2","room:a","phx_leave",{}]`)
	b.expect(`["1","2","room:a","phx_reply",` + okEmpty + `]`)
	b.expect(`["1","1","room:a","phx_close",{}]`)
	a.expect(diffFrame("room:a", 0, 0, 1, 0))
	alice1.expect(diffFrame("room:a", 0, 0, 1, 0))
	alice2.expect(diffFrame("room:a", 0, 0, 1, 0))

	// Closing one of alice's tabs keeps her counted; closing the second removes her.
	require.NoError(t, alice1.ws.Close())
	require.Eventually(t, func() bool { return tg.tr.Count("room:a").Connections == 2 }, waitFor, 5*time.Millisecond)
	require.NoError(t, alice2.ws.Close())
	a.expect(diffFrame("room:a", 0, 0, 0, 1))
	require.Equal(t, 1, tg.tr.Count("room:a").Viewers)
}

// TestDiffShapesPerSocket: one topic, sockets of both serializers and with and without
// connections get the same change in their own shape.
func TestDiffShapesPerSocket(t *testing.T) {
	tg := startGateway(t, nil)
	v1 := tg.dial(t, "vsn=1.0.0")
	v1.sendRaw(`{"topic":"room:a","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}`)
	v1.expect(`{"join_ref":"1","ref":"1","topic":"room:a","event":"phx_reply","payload":` + okEmpty + `}`)
	v1.expect(`{"join_ref":"1","ref":null,"topic":"room:a","event":"presence_state","payload":{"viewers":{"count":1},"users":{"count":0}}}`)

	conns := tg.dial(t, "vsn=2.0.0")
	conns.sendRaw(`["1","1","room:a","phx_join",{"connections":true}]`)
	conns.expect(`["1","1","room:a","phx_reply",` + okEmpty + `]`)
	conns.expect(`["1",null,"room:a","presence_state",{"viewers":{"count":2},"users":{"count":0},"connections":{"count":2}}]`)
	v1.expect(`{"join_ref":null,"ref":null,"topic":"room:a","event":"presence_diff","payload":{"joins":{"viewers":{"count":1},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}}`)

	plain := tg.dial(t, "vsn=2.0.0&token="+token(t, "erin", time.Hour))
	plain.join("room:a", "1")
	plain.expect(stateFrame("1", "room:a", 2, 1))
	v1.expect(`{"join_ref":null,"ref":null,"topic":"room:a","event":"presence_diff","payload":{"joins":{"viewers":{"count":0},"users":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}}`)
	conns.expect(`[null,null,"room:a","presence_diff",{"joins":{"viewers":{"count":0},"users":{"count":1},"connections":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":0},"connections":{"count":0}}}]`)
}
