// Package testcluster runs an in-process Headcount cluster for tests: N nodes, each a tracker
// driven by a gossip node, on a fault-injecting in-memory network (package memnet) or on real
// loopback UDP/TCP sockets.
//
// Tests and benchmarks use it to check behaviour under partitions, asymmetric cuts, packet loss,
// delay, crashes, graceful stops, restarts and churn:
//
//	c, err := testcluster.New(testcluster.Options{Nodes: 5})
//	...
//	defer c.Close()
//	c.Node(0).Track("room", "")             // one anonymous viewer on node 0
//	c.RequireConverged(t, 10*time.Second)  // every node counts it
//	c.Partition([]int{0, 1}, []int{2, 3, 4})
//
// With Options.Gateways every node also serves a WebSocket gateway (package wsgateway) on its
// own port, so real Phoenix clients (a browser, the phoenix JS client, a Go WebSocket client)
// can connect to any node: Node.URL returns its base URL, kept across restarts. A killed node's
// gateway stops after the node is gone, so its sockets' departures reach peers only through
// failure detection, as after a real crash.
//
// The ground truth is computed from the presences each running node owns, so assertions hold
// whoever tracked them (the cluster's helpers, the tracker API directly, or a gateway's sockets).
//
// Everything a Cluster starts is stopped by Close, which waits for every goroutine (goleak clean).
// testcluster must never be used in production: the in-memory network has no security, and the
// default profiles trade robustness for speed.
package testcluster
