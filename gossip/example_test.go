package gossip_test

import (
	"context"
	"fmt"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/tracker"
)

// Two nodes on loopback: a presence tracked on one is counted on the other.
func ExampleNew() {
	node := func(name string, join ...string) *gossip.Node {
		tc := tracker.DefaultConfig()
		tc.Name = name
		tr, err := tracker.New(tc)
		if err != nil {
			panic(err)
		}
		cfg := gossip.LocalConfig()
		cfg.BindPort = 0 // any free port
		cfg.Label = "example"
		cfg.Join = join
		n, err := gossip.New(cfg, tr)
		if err != nil {
			panic(err)
		}
		return n
	}
	a := node("a")
	b := node("b", a.Addr())
	defer b.Close()

	_, _ = a.Tracker().Track(1, "lobby", "alice", nil)
	for b.Tracker().Count("lobby").Users != 1 {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("b counts %+v\n", b.Tracker().Count("lobby"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Leave(ctx) // goodbye: b drops alice at once
	for b.Tracker().Count("lobby").Users != 0 {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("after a left, b counts %+v\n", b.Tracker().Count("lobby"))
	// Output:
	// b counts {Viewers:0 Users:1 Connections:1}
	// after a left, b counts {Viewers:0 Users:0 Connections:0}
}
