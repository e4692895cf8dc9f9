package wsgateway

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// viewClient applies presence_state and presence_diff the way the seed article's reducer
// does (count + joins - leaves), routing frames the way the phoenix client does: a frame with
// a join_ref only reaches the channel's current join.
type viewClient struct {
	t     *testing.T
	tg    *testGateway
	query string

	mu      sync.Mutex
	ws      *websocket.Conn
	readers sync.WaitGroup
	nextRef int
	jr      map[string]string // topic -> current join ref ("" = not joined)
	joined  map[string]bool   // presence_state received for the current join
	view    map[string]Counts
}

func newViewClient(t *testing.T, tg *testGateway, query string) *viewClient {
	v := &viewClient{t: t, tg: tg, query: query}
	v.connect()
	return v
}

func (v *viewClient) connect() {
	c, resp, err := v.tg.tryDial(v.query, nil, nil)
	require.NoError(v.t, err)
	resp.Body.Close()
	v.mu.Lock()
	v.ws = c.ws
	v.jr, v.joined, v.view = map[string]string{}, map[string]bool{}, map[string]Counts{}
	v.mu.Unlock()
	v.readers.Add(1)
	go v.read(c.ws)
}

func (v *viewClient) read(ws *websocket.Conn) {
	defer v.readers.Done()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f [5]json.RawMessage
		if json.Unmarshal(data, &f) != nil {
			v.t.Errorf("bad frame %s", data)
			return
		}
		var jr *string
		var topic, event string
		_ = json.Unmarshal(f[0], &jr)
		_ = json.Unmarshal(f[2], &topic)
		_ = json.Unmarshal(f[3], &event)
		v.mu.Lock()
		if v.ws != ws { // a frame of a closed socket
			v.mu.Unlock()
			return
		}
		current := v.jr[topic]
		if jr != nil && *jr != current {
			v.mu.Unlock()
			continue // stale: the phoenix client drops it
		}
		switch event {
		case "presence_state":
			var p struct{ Viewers, Users struct{ Count int } }
			require.NoError(v.t, json.Unmarshal(f[4], &p))
			v.view[topic] = Counts{Viewers: p.Viewers.Count, Users: p.Users.Count}
			v.joined[topic] = true
		case "presence_diff":
			if v.joined[topic] {
				var p struct {
					Joins, Leaves struct{ Viewers, Users struct{ Count int } }
				}
				require.NoError(v.t, json.Unmarshal(f[4], &p))
				c := v.view[topic]
				c.Viewers += p.Joins.Viewers.Count - p.Leaves.Viewers.Count
				c.Users += p.Joins.Users.Count - p.Leaves.Users.Count
				v.view[topic] = c
			}
		case "phx_close":
			v.joined[topic] = false
		}
		v.mu.Unlock()
	}
}

func (v *viewClient) send(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	require.NoError(v.t, v.ws.WriteMessage(websocket.TextMessage, []byte(s)))
}

func (v *viewClient) join(topic string) {
	v.mu.Lock()
	v.nextRef++
	ref := fmt.Sprint(v.nextRef)
	v.jr[topic] = ref
	v.joined[topic] = false
	v.mu.Unlock()
	v.send(fmt.Sprintf(`[%q,%q,%q,"phx_join",{}]`, ref, ref, topic))
}

func (v *viewClient) leave(topic string) {
	v.mu.Lock()
	ref := v.jr[topic]
	v.jr[topic] = ""
	v.joined[topic] = false
	v.nextRef++
	v.mu.Unlock()
	if ref != "" {
		v.send(fmt.Sprintf(`[%q,"L%d",%q,"phx_leave",{}]`, ref, v.nextRef, topic))
	}
}

func (v *viewClient) reconnect() {
	v.mu.Lock()
	old := v.ws
	v.ws = nil
	v.mu.Unlock()
	old.Close()
	v.connect()
}

func (v *viewClient) close() {
	v.mu.Lock()
	ws := v.ws
	v.ws = nil
	v.mu.Unlock()
	ws.Close()
	v.readers.Wait()
}

// TestStatePlusDiffsEqualsTruth is the gateway's main property: under concurrent joins, leaves,
// duplicate joins and reconnects of anonymous sockets and of several tabs of the same users,
// every client's presence_state plus the diffs after it ends equal to the true counts.
func TestStatePlusDiffsEqualsTruth(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			tg := startGateway(t, nil)
			topics := []string{"room:1", "room:2", "room:3"}
			queries := []string{"vsn=2.0.0", "vsn=2.0.0",
				"vsn=2.0.0&token=" + token(t, "u1", time.Hour), "vsn=2.0.0&token=" + token(t, "u1", time.Hour),
				"vsn=2.0.0&token=" + token(t, "u2", time.Hour)}
			const workers, perWorker, ops = 4, 3, 60
			var clients []*viewClient
			for i := 0; i < workers*perWorker; i++ {
				clients = append(clients, newViewClient(t, tg, queries[i%len(queries)]))
			}
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(mine []*viewClient, rng *rand.Rand) {
					defer wg.Done()
					for i := 0; i < ops; i++ {
						c := mine[rng.IntN(len(mine))]
						topic := topics[rng.IntN(len(topics))]
						switch r := rng.IntN(10); {
						case r < 5:
							c.join(topic) // sometimes a duplicate join
						case r < 9:
							c.leave(topic)
						default:
							c.reconnect()
						}
					}
				}(clients[w*perWorker:(w+1)*perWorker], rand.New(rand.NewPCG(seed, uint64(w))))
			}
			wg.Wait()

			require.Eventually(t, func() bool {
				for _, c := range clients {
					c.mu.Lock()
					for _, topic := range topics {
						if c.jr[topic] == "" {
							continue
						}
						truth := tg.g.count(topic).view(0)
						if !c.joined[topic] || c.view[topic] != truth {
							c.mu.Unlock()
							return false
						}
					}
					c.mu.Unlock()
				}
				return true
			}, waitFor, 10*time.Millisecond, "some client's counts never converged to the truth")
			for _, c := range clients {
				c.close()
			}
			require.Eventually(t, func() bool {
				for _, topic := range topics {
					if tg.tr.Count(topic).Connections != 0 {
						return false
					}
				}
				return true
			}, waitFor, 10*time.Millisecond)
		})
	}
}
