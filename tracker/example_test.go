package tracker_test

import (
	"fmt"
	"slices"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// A tracker counts the connections present in a topic: anonymous viewers
// one per connection, logged-in users once however many tabs they open.
func Example() {
	cfg := tracker.DefaultConfig()
	cfg.Name = "node-a"
	t, err := tracker.New(cfg)
	if err != nil {
		panic(err)
	}
	// Owners are connection ids minted by the caller.
	t.Track(1, "video:42", "", nil)      // an anonymous viewer
	t.Track(2, "video:42", "alice", nil) // alice...
	t.Track(3, "video:42", "alice", nil) // ...in a second tab
	t.Track(4, "video:42", "bob", nil)
	fmt.Printf("%+v\n", t.Count("video:42"))

	t.UntrackOwner(3) // alice closes a tab: she is still there
	t.UntrackOwner(4)
	fmt.Printf("%+v\n", t.Count("video:42"))
	// Output:
	// {Viewers:1 Users:2 Connections:4}
	// {Viewers:1 Users:1 Connections:2}
}

// A subscriber learns which topics changed, coalesced: however many
// changes happen before it looks, it is woken once and sees each topic
// once. It then reads the counts it cares about.
func ExampleTracker_Subscribe() {
	cfg := tracker.DefaultConfig()
	cfg.Name = "node-a"
	t, err := tracker.New(cfg)
	if err != nil {
		panic(err)
	}
	sub := t.Subscribe()
	defer sub.Close()

	for i := range 10 {
		t.Track(tracker.Owner(i), "room:lobby", "", nil)
	}
	t.Track(100, "room:kitchen", "carol", nil)

	<-sub.C() // one wake-up for all eleven changes
	topics := sub.Topics()
	slices.Sort(topics)
	for _, topic := range topics {
		fmt.Printf("%s %+v\n", topic, t.Count(topic))
	}
	fmt.Println(sub.Topics() == nil) // drained
	// Output:
	// room:kitchen {Viewers:0 Users:1 Connections:1}
	// room:lobby {Viewers:10 Users:0 Connections:10}
	// true
}

// Two trackers replicating by hand. A transport (package gossip, or a test)
// tells each tracker when a peer is up, calls Tick on a timer and sends
// what Tick, Handle and ReplicaUp return, encoded with crdt.Marshal.
func ExampleTracker_Tick() {
	newNode := func(name string) *tracker.Tracker {
		cfg := tracker.DefaultConfig()
		cfg.Name, cfg.Epoch = name, 1
		t, err := tracker.New(cfg)
		if err != nil {
			panic(err)
		}
		return t
	}
	a, b := newNode("a"), newNode("b")

	// send delivers outs from one node, and the replies they provoke, to
	// the other node (a two-node cluster: every target is the peer).
	var send func(from *tracker.Tracker, outs []tracker.Outbound)
	send = func(from *tracker.Tracker, outs []tracker.Outbound) {
		for _, o := range outs {
			wire, err := crdt.Marshal(from.Self(), o.Msg)
			if err != nil {
				panic(err)
			}
			sender, msg, err := crdt.Unmarshal(wire)
			if err != nil {
				panic(err)
			}
			peer := b
			if from == b {
				peer = a
			}
			send(peer, peer.Handle(sender, msg))
		}
	}

	send(a, a.ReplicaUp(b.Self())) // membership: each sees the other alive
	send(b, b.ReplicaUp(a.Self()))

	a.Track(1, "video:42", "alice", nil)
	b.Track(1, "video:42", "", nil)
	fmt.Printf("before Tick: a %+v, b %+v\n", a.Count("video:42"), b.Count("video:42"))

	now := time.Unix(1_700_000_000, 0)
	send(a, a.Tick(now)) // flush a's batched ops as a delta
	send(b, b.Tick(now))
	fmt.Printf("after Tick:  a %+v, b %+v\n", a.Count("video:42"), b.Count("video:42"))

	send(a, a.Leave()) // a's goodbye: b drops a's presences at once
	fmt.Printf("after Leave: b %+v\n", b.Count("video:42"))
	// Output:
	// before Tick: a {Viewers:0 Users:1 Connections:1}, b {Viewers:1 Users:0 Connections:1}
	// after Tick:  a {Viewers:1 Users:1 Connections:2}, b {Viewers:1 Users:1 Connections:2}
	// after Leave: b {Viewers:1 Users:0 Connections:1}
}
