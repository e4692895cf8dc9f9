package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/webhook/webhooktest"
)

// Issue 13's partition, as a network cut: three agents in their own namespaces (netLab), the
// receiver in a fourth. c is cut off from a and b on the gossip port only (UDP and TCP, both
// ways), so it keeps running, keeps its sockets and presences, takes every topic on its side
// and keeps POSTing to the receiver, whose path stays open.

// cutGossip drops, in ns, every UDP and TCP packet to or from peers on the gossip port port.
func cutGossip(lab *netLab, ns, port string, peers ...string) {
	lab.t.Helper()
	set := strings.Join(peers, ",")
	for _, proto := range []string{"udp", "tcp"} {
		for _, p := range []string{"--dport", "--sport"} {
			lab.iptables(ns, "-A", "INPUT", "-s", set, "-p", proto, p, port, "-j", "DROP")
			lab.iptables(ns, "-A", "OUTPUT", "-d", set, "-p", proto, p, port, "-j", "DROP")
		}
	}
}

// countsOf is the receiver's truth for the clients on the nodes in on: each topic with one
// occupied, with its viewers (the clients are anonymous: no users).
func countsOf(clients []liveClient, on ...string) map[string]webhooktest.State {
	out := map[string]webhooktest.State{}
	for _, lc := range clients {
		for _, n := range on {
			if lc.node == n {
				s := out[lc.topic]
				out[lc.topic] = webhooktest.State{Occupied: true, Viewers: s.Viewers + 1}
			}
		}
	}
	return out
}

// sender is the name of the node that made event id (ids are name-incarnation-sequence).
func sender(id string) string {
	for range 2 {
		if i := strings.LastIndexByte(id, '-'); i >= 0 {
			id = id[:i]
		}
	}
	return id
}

// eventsFrom returns the receiver's accepted events made by the nodes in from, in order.
func eventsFrom(rcv *webhooktest.Receiver, from ...string) []webhook.Event {
	var out []webhook.Event
	for _, e := range rcv.Events() {
		for _, n := range from {
			if sender(e.ID) == n {
				out = append(out, e)
			}
		}
	}
	return out
}

// matchSide fails unless the last word of the senders from on every topic is truth.
func matchSide(rcv *webhooktest.Receiver, truth map[string]webhooktest.State, from ...string) error {
	got := webhooktest.StatesOf(eventsFrom(rcv, from...))
	var bad []string
	for topic, want := range truth {
		if got[topic] != want {
			bad = append(bad, fmt.Sprintf("%s: %+v, want %+v", topic, got[topic], want))
		}
	}
	for topic, g := range got {
		if _, ok := truth[topic]; !ok && g.Occupied {
			bad = append(bad, fmt.Sprintf("%s: %+v, want vacated", topic, g))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("last words of %v: %v", from, bad)
	}
	return nil
}

func TestNetnsWebhookPartition(t *testing.T) {
	lab := newNetLab(t)
	secret := []byte("e2e-webhook-" + t.Name())
	rns, rip := lab.host(4)
	rcv := webhooktest.NewListener(secret, lab.listen(rns, net.JoinHostPort(rip, "8080")))
	defer rcv.Close()
	f := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(f, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--webhook-url", rcv.URL() + "/hook", "--webhook-secret-file", f,
		"--webhook-events", "occupied,vacated,counts", "--webhook-vacate-grace", hookGrace.String(),
		"--webhook-timeout", "1s", "--webhook-debounce", "100ms"}
	list := labClusterWith(t, lab, flags, "a", "b", "c")
	nodes := map[string]*agentProc{"a": list[0], "b": list[1], "c": list[2]}
	for _, n := range list {
		expectSettled(t, n, 3)
	}
	all := []string{"a", "b", "c"}
	majority := []string{"a", "b"}

	gone := ownedBy(t, "c", all, "gone:")     // its client on a leaves during the partition
	fresh := ownedBy(t, "a", all, "fresh:")   // occupied during the partition, on c only
	both := ownedBy(t, "b", all, "both:")     // clients on a and c, one more on b during it
	stay := ownedBy(t, "a", all, "stay:")     // a client on c only, all along
	cleave := ownedBy(t, "c", all, "cleave:") // clients on a and c; c's leaves during it
	held := ownedBy(t, "a", all, "held:")     // a client on a only, all along: c says vacated
	topics := []string{gone, fresh, both, stay, cleave, held}
	var clients []liveClient
	join := func(node, topic string) {
		clients = append(clients, liveClient{node, topic, dial(t, nodes[node].http, topic, "")})
	}
	leave := func(node, topic string) {
		for i, lc := range clients {
			if lc.node == node && lc.topic == topic {
				lc.c.close()
				clients = append(clients[:i], clients[i+1:]...)
				return
			}
		}
		t.Fatalf("no client of %s on %s", topic, node)
	}
	join("a", gone)
	join("a", both)
	join("c", both)
	join("c", stay)
	join("a", cleave)
	join("c", cleave)
	join("a", held)
	eventually(t, convergeBound, "receiver state before the partition", func() error {
		return rcv.Match(countsOf(clients, all...), true)
	})

	// The cut: c is alone on its side; each side sees the other fail and takes its topics.
	_, gport, err := net.SplitHostPort(nodes["c"].gossip)
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, n := range majority {
		ip, _, _ := net.SplitHostPort(nodes[n].gossip)
		peers = append(peers, ip)
	}
	cutGossip(lab, nodes["c"].netns, gport, peers...)
	expectAlive(t, nodes["c"], "c")
	for _, n := range majority {
		expectAlive(t, nodes[n], majority...)
	}
	expectSettled(t, nodes["c"], 1)
	for _, n := range majority {
		expectSettled(t, nodes[n], 2)
	}

	// Occupancy changes on both sides while the partition lasts.
	leave("a", gone)
	join("c", fresh)
	join("b", both)
	leave("c", cleave)
	for _, topic := range topics {
		expectCounts2(t, topic, countsIn(countsOf(clients, majority...)[topic]), nodes["a"], nodes["b"])
		expectCounts2(t, topic, countsIn(countsOf(clients, "c")[topic]), nodes["c"])
	}
	// The documented behaviour: each side reports its own view, so the receiver gets conflicting
	// events (stay: vacated from a, occupied from c; fresh: occupied from c only).
	eventually(t, convergeBound, "each side's last word during the partition", func() error {
		if err := matchSide(rcv, countsOf(clients, majority...), majority...); err != nil {
			return err
		}
		return matchSide(rcv, countsOf(clients, "c"), "c")
	})
	during := len(rcv.Events())

	// The heal: after everyone settles on three members, the last word is the truth.
	lab.iptables(nodes["c"].netns, "-F")
	for _, n := range list {
		expectAlive(t, n, all...)
	}
	for _, n := range list {
		expectSettled(t, n, 3)
	}
	truth := countsOf(clients, all...)
	for _, topic := range topics {
		expectCounts2(t, topic, countsIn(truth[topic]), list...)
	}
	eventually(t, convergeBound, "receiver state after the heal", func() error {
		return rcv.Match(truth, true)
	})

	// Only the owners a side could have had sent a topic's events: the owner among all, the
	// majority's owner, and c alone on its side. An id in two deliveries is a retry of one body.
	for _, e := range rcv.Events() {
		if s := sender(e.ID); s != "c" && s != webhook.Owner(e.Topic, all) && s != webhook.Owner(e.Topic, majority) {
			t.Errorf("event %+v from %s, which never owned %s", e, s, e.Topic)
		}
	}
	bodies := map[string]string{}
	for _, d := range rcv.Deliveries() {
		if !d.Verified {
			t.Errorf("delivery %s: signature does not verify", d.Body)
		}
		for _, e := range d.Payload.Events {
			if b, ok := bodies[e.ID]; ok && b != string(d.Body) {
				t.Errorf("id %s in two different bodies:\n%s\n%s", e.ID, b, d.Body)
			}
			bodies[e.ID] = string(d.Body)
		}
	}
	evs := rcv.Events()
	for _, topic := range topics {
		var s []string
		healed := false
		for i, e := range evs {
			if e.Topic == topic {
				if i >= during && !healed {
					s, healed = append(s, "|heal|"), true
				}
				s = append(s, sender(e.ID)+":"+strings.TrimPrefix(e.Name, "topic_"))
			}
		}
		t.Logf("%s: %s", topic, strings.Join(s, " "))
	}
	t.Logf("%d events before the heal, %d after, %d deliveries", during, len(evs)-during, len(rcv.Deliveries()))
}

// countsIn is s as the nodes report it: viewers, users.
func countsIn(s webhooktest.State) [2]int { return [2]int{s.Viewers, s.Users} }
