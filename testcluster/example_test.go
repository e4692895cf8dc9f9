package testcluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/headcount-io/headcount/testcluster"
)

// A three-node cluster on the in-memory network: presences tracked on different nodes are
// counted on every node, and a logged-in user with two tabs on two nodes counts once.
func Example() {
	c, err := testcluster.New(testcluster.Options{Nodes: 3})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	_, _ = c.Node(0).Track("lobby", "")      // an anonymous viewer
	_, _ = c.Node(1).Track("lobby", "alice") // alice's first tab
	_, _ = c.Node(2).Track("lobby", "alice") // alice's second tab, on another node

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitConverged(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", c.Node(0).Tracker().Count("lobby"))

	// Cut node 2 off; once the others detect the failure they stop counting its presences.
	_ = c.Partition([]int{0, 1}, []int{2})
	if err := c.WaitGroupConverged(ctx, 0, 1); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", c.Node(0).Tracker().Count("lobby"))
	// Output:
	// {Viewers:1 Users:1 Connections:3}
	// {Viewers:1 Users:1 Connections:2}
}

// OnNodeStart is where a test attaches per-node services, such as an HTTP gateway serving the
// node's tracker; OnNodeStop is where it shuts them down.
func ExampleOptions_onNodeStart() {
	started := 0
	c, err := testcluster.New(testcluster.Options{
		Nodes: 2,
		OnNodeStart: func(n *testcluster.Node) {
			started++ // e.g. wsgateway.New(...) with n.Tracker() and n.Gossip().Members()
		},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.Kill(1)
	_ = c.Restart(1)
	fmt.Println("started", started, "nodes")
	// Output: started 3 nodes
}
