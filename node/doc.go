// Package node is a whole Headcount node behind one Config: a tracker, optionally its gossip
// link to a cluster, optionally the WebSocket gateway, their metrics, and the HTTP routes that
// join them (/v1/members, /metrics).
//
// It is the facade the binary (cmd/headcount agent), testcluster and embedding services use,
// as serf is over memberlist: the packages beneath it stay small and know nothing of each
// other, and the assembly, the owner of connection ids (Tracker.NewOwner) and the one stop
// order live here. stop.go is the only place that decides in which order a node stops.
//
// A node without a Gossip section is a single node: a built-in loop ticks its tracker. A node
// without a Gateway section holds presences tracked by its embedder only.
//
// Package node starts goroutines (the HTTP server, gossip's, the gateway's, the tick loop) and
// stops every one of them in Leave or Close. It never calls os.Exit and never reads flags or
// the environment: that is cmd/headcount's job.
package node
