package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/webhook/webhooktest"
)

// Webhooks (issue 13): three agents, one receiver in this process.

const hookGrace = time.Second

// hookAgents starts a, b and c sending webhooks to rcv and waits until every node has settled
// on the three-member view (no re-send pending), so later events are only transitions.
func hookAgents(t *testing.T, rcv *webhooktest.Receiver, secret []byte) map[string]*agentProc {
	t.Helper()
	f := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(f, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--webhook-url", rcv.URL() + "/hook", "--webhook-secret-file", f,
		"--webhook-vacate-grace", hookGrace.String(), "--webhook-timeout", "1s", "--webhook-debounce", "100ms"}
	nodes := map[string]*agentProc{}
	for _, name := range []string{"a", "b", "c"} {
		nodes[name] = newAgent(t, name, flags...)
	}
	nodes["a"].start(t)
	nodes["b"].start(t, nodes["a"].gossip)
	nodes["c"].start(t, nodes["a"].gossip)
	for _, n := range nodes {
		expectAlive(t, n, "a", "b", "c")
	}
	for _, n := range nodes {
		expectSettled(t, n, 3)
	}
	return nodes
}

// expectSettled waits until n's webhook sees members members and has no re-send pending.
func expectSettled(t *testing.T, n *agentProc, members int) {
	t.Helper()
	eventually(t, convergeBound, "webhook of "+n.name+" settled", func() error {
		_, body, err := get(n.http, "/metrics")
		if err != nil {
			return err
		}
		m := string(body)
		want := []string{
			fmt.Sprintf("headcount_webhook_members{node=%q} %d", n.name, members),
			fmt.Sprintf("headcount_webhook_settling{node=%q} 0", n.name),
		}
		for _, w := range want {
			if !strings.Contains(m, w+"\n") {
				return fmt.Errorf("no %q in /metrics", w)
			}
		}
		return nil
	})
}

// ownedBy returns a topic with prefix whose sender among members is owner.
func ownedBy(t *testing.T, owner string, members []string, prefix string) string {
	t.Helper()
	for i := range 10000 {
		topic := fmt.Sprintf("%s%d", prefix, i)
		if webhook.Owner(topic, members) == owner {
			return topic
		}
	}
	t.Fatalf("no topic owned by %s", owner)
	return ""
}

func eventNames(evs []webhook.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, strings.TrimPrefix(e.Name, "topic_"))
	}
	return strings.Join(s, ",")
}

// collapse drops repeats of the same event name in a row: the duplicates an ownership change
// may cause (a false failure detection on a loaded machine is one).
func collapse(evs []webhook.Event) []webhook.Event {
	var out []webhook.Event
	for _, e := range evs {
		if len(out) == 0 || out[len(out)-1].Name != e.Name {
			out = append(out, e)
		}
	}
	return out
}

// expectEvents waits until the receiver's events of topic read want (names, comma-separated),
// duplicates in a row aside; noDuplicates checks those at the end.
func expectEvents(t *testing.T, rcv *webhooktest.Receiver, topic, want string) {
	t.Helper()
	eventually(t, convergeBound, "webhook events of "+topic, func() error {
		if got := eventNames(collapse(rcv.Of(topic))); got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	})
}

// noDuplicates fails if a topic got an event twice in a row while no node re-sent any state
// (headcount_webhook_events_resent_total): duplicates happen only around ownership changes.
func noDuplicates(t *testing.T, rcv *webhooktest.Receiver, nodes map[string]*agentProc, topics ...string) {
	t.Helper()
	resent := 0.0
	for _, n := range nodes {
		_, body, err := get(n.http, "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			var v float64
			if strings.HasPrefix(line, "headcount_webhook_events_resent_total{") {
				if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
					resent += v
				}
			}
		}
	}
	for _, topic := range topics {
		evs := rcv.Of(topic)
		if len(collapse(evs)) != len(evs) {
			if resent == 0 {
				t.Errorf("%s: %q has duplicates, and no node re-sent any state", topic, eventNames(evs))
			} else {
				t.Logf("%s: %q: duplicates after %v re-sent events (an ownership change)", topic, eventNames(evs), resent)
			}
		}
	}
}

func TestWebhookOccupiedVacatedRetriesAndSignature(t *testing.T) {
	secret := []byte("e2e-webhook-" + t.Name())
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	nodes := hookAgents(t, rcv, secret)
	all := []string{"a", "b", "c"}

	// Observers add no presence: readers of a topic never occupy it (checked at the end, after
	// later events have been delivered).
	watched := ownedBy(t, "c", all, "watched:")
	for _, n := range []string{"a", "b"} {
		dialJoin(t, nodes[n].http, watched, "", map[string]any{"observe": true})
	}

	// The first client on any node occupies once; more clients on other nodes send nothing.
	room := ownedBy(t, "a", all, "room:") // the sender is a, the clients are on b and c
	first := dial(t, nodes["b"].http, room, "")
	expectEvents(t, rcv, room, "occupied")
	second := dial(t, nodes["c"].http, room, "")
	expectCounts2(t, room, [2]int{2, 0}, nodes["a"], nodes["b"], nodes["c"])

	// A page reload inside the grace: the last client leaves and comes back on another node.
	first.close()
	second.close()
	reloaded := dial(t, nodes["a"].http, room, "")
	expectCounts2(t, room, [2]int{1, 0}, nodes["a"], nodes["b"], nodes["c"])

	// The last one leaves: vacated once, after the grace.
	reloaded.close()
	left := time.Now()
	expectEvents(t, rcv, room, "occupied,vacated")
	evs := collapse(rcv.Of(room))
	// The peak is the owner's view: 2, or 3 when the reload's join reached a before the two
	// leaves from b and c did (nothing here waits for them: it is a reload). Seen once in CI.
	if v := evs[1]; (v.Viewers != 2 && v.Viewers != 3) || v.Users != 0 || v.OccupiedMS <= 0 {
		t.Errorf("vacated %+v, want a peak of 2 viewers (3 if the reload overtook the leaves) and a positive occupied_ms", v)
	}
	var vacatedAt time.Time
	for _, d := range rcv.Deliveries() {
		for _, e := range d.Payload.Events {
			if e.ID == evs[1].ID {
				vacatedAt = d.At
			}
		}
	}
	if got := vacatedAt.Sub(left); got < hookGrace-100*time.Millisecond {
		t.Errorf("vacated %v after the last leave, before the %v grace", got, hookGrace)
	}

	// The receiver answers 500 once: the same batch, same ids, comes again and is accepted.
	rcv.FailNext(http.StatusInternalServerError)
	before := len(rcv.Deliveries())
	hall := ownedBy(t, "b", all, "hall:")
	c := dial(t, nodes["c"].http, hall, "")
	expectEvents(t, rcv, hall, "occupied")
	ds := rcv.Deliveries()[before:]
	if len(ds) < 2 || ds[0].Status != http.StatusInternalServerError || ds[1].Status != http.StatusOK ||
		string(ds[0].Body) != string(ds[1].Body) || ds[0].Payload.Events[0].ID != ds[1].Payload.Events[0].ID {
		t.Errorf("deliveries after a 500: %d, want the refused batch again with the same ids", len(ds))
	}
	c.close()
	expectEvents(t, rcv, hall, "occupied,vacated")

	noDuplicates(t, rcv, nodes, room, hall)
	if evs := rcv.Of(watched); len(evs) != 0 {
		t.Errorf("observers of %s caused %q", watched, eventNames(evs))
	}

	// Every delivery is signed with the secret; an id accepted twice is only ever a retry of
	// the same body (its answer was late: a timeout on a loaded machine).
	seen := map[string]string{}
	for _, d := range rcv.Deliveries() {
		if !d.Verified {
			t.Errorf("delivery %s: signature does not verify", d.Body)
		}
		if d.Status != http.StatusOK {
			continue
		}
		for _, e := range d.Payload.Events {
			if body, ok := seen[e.ID]; ok && body != string(d.Body) {
				t.Errorf("id %s in two different bodies:\n%s\n%s", e.ID, body, d.Body)
			}
			seen[e.ID] = string(d.Body)
		}
	}
}

// expectCounts2 is expectCounts for any topic.
func expectCounts2(t *testing.T, topic string, want [2]int, nodes ...*agentProc) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, convergeBound, "counts of "+topic+" on "+n.name, func() error {
			got, err := topicCounts(n.http, topic)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("viewers/users = %v, want %v", got, want)
			}
			return nil
		})
	}
}

// liveClient is a client the test keeps, on the node it is connected to.
type liveClient struct {
	node  string
	topic string
	c     *wsClient
}

// truthOf is what the receiver must end with: topics with a client on a running node.
func truthOf(clients []liveClient, down map[string]bool) map[string]webhooktest.State {
	out := map[string]webhooktest.State{}
	for _, lc := range clients {
		if !down[lc.node] {
			out[lc.topic] = webhooktest.State{Occupied: true}
		}
	}
	return out
}

// stream opens and closes clients on the nodes in on, over topics, for n steps.
func stream(t *testing.T, rng *rand.Rand, nodes map[string]*agentProc, on []string, topics []string, clients []liveClient, n int) []liveClient {
	t.Helper()
	for range n {
		if len(clients) == 0 || rng.IntN(3) > 0 {
			node := on[rng.IntN(len(on))]
			topic := topics[rng.IntN(len(topics))]
			clients = append(clients, liveClient{node, topic, dial(t, nodes[node].http, topic, "")})
			continue
		}
		k := rng.IntN(len(clients))
		if lc := clients[k]; lc.c != nil {
			lc.c.close()
		}
		clients = append(clients[:k], clients[k+1:]...)
	}
	return clients
}

func TestWebhookFinalStateAfterKillAndFreeze(t *testing.T) {
	secret := []byte("e2e-webhook-" + t.Name())
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	nodes := hookAgents(t, rcv, secret)
	all := []string{"a", "b", "c"}
	rng := rand.New(rand.NewPCG(13, 13))
	var topics []string
	for i := range 4 { // c sends these; a and b take them over
		topics = append(topics, ownedBy(t, "c", all, fmt.Sprintf("k%d:", i)))
	}
	topics = append(topics, ownedBy(t, "a", all, "a:"), ownedBy(t, "b", all, "b:"))

	// kill -9 of the sending node mid-stream: clients on every node, some only on c.
	clients := stream(t, rng, nodes, all, topics, nil, 20)
	nodes["c"].signal(t, syscall.SIGKILL)
	nodes["c"].waitExit(t, exitBound)
	down := map[string]bool{"c": true}
	var kept []liveClient
	for _, lc := range clients {
		if !down[lc.node] {
			kept = append(kept, lc)
		}
	}
	clients = stream(t, rng, nodes, []string{"a", "b"}, topics, kept, 10)
	expectAlive(t, nodes["a"], "a", "b")
	eventually(t, convergeBound, "receiver state after kill -9 of c", func() error {
		return rcv.Match(truthOf(clients, down), false)
	})

	// c comes back; then b is frozen (SIGSTOP: cut off from the cluster and the receiver,
	// its queue stuck mid-stream) while a takes its topics, and thawed (SIGCONT) later.
	nodes["c"].start(t, nodes["a"].gossip)
	for _, n := range []string{"a", "b", "c"} {
		expectAlive(t, nodes[n], "a", "b", "c")
	}
	clients = stream(t, rng, nodes, all, topics, clients, 10)
	nodes["b"].signal(t, syscall.SIGSTOP)
	expectAlive(t, nodes["a"], "a", "c")
	down = map[string]bool{"b": true}
	kept = nil
	for _, lc := range clients {
		if lc.node != "b" {
			kept = append(kept, lc)
		}
	}
	kept = stream(t, rng, nodes, []string{"a", "c"}, topics, kept, 10)
	eventually(t, convergeBound, "receiver state with b frozen", func() error {
		return rcv.Match(truthOf(kept, down), false)
	})
	nodes["b"].signal(t, syscall.SIGCONT)
	for _, lc := range clients {
		if lc.node == "b" {
			kept = append(kept, lc)
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		expectAlive(t, nodes[n], "a", "b", "c")
	}
	// b's clients may have been closed by b while it was frozen (missed heartbeats); the truth is
	// what the nodes count now, which the receiver must match once everyone has settled.
	for _, n := range []string{"a", "b", "c"} {
		expectSettled(t, nodes[n], 3)
	}
	eventually(t, convergeBound, "receiver state after b thawed", func() error {
		truth := map[string]webhooktest.State{}
		for _, topic := range topics {
			got, err := topicCounts(nodes["a"].http, topic)
			if err != nil {
				return err
			}
			if got[0]+got[1] > 0 {
				truth[topic] = webhooktest.State{Occupied: true}
			}
		}
		return rcv.Match(truth, false)
	})
}
