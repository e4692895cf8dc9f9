// Package tracker is one Headcount node's presence engine.
//
// A Tracker holds the node's replicated set of presences (a crdt.State),
// accepts local Track/Update/Untrack calls keyed by the connection that owns
// them, keeps per-topic counts (anonymous viewers, distinct users,
// connections) incrementally from every change, and tells subscribers which
// topics changed.
//
// It never does I/O and starts no goroutines. Time is an input: the
// transport that links trackers (package gossip, or a test simulator) calls
// Tick with the current time and sends the Outbound messages that Tick,
// Handle and the membership calls return. That keeps the engine
// deterministic: the same inputs give the same outputs.
//
// Replication rules, in short: local operations are batched and flushed as
// deltas to every live peer on Tick; periodic digests (owner -> sequence)
// let peers find what they lack and request it from whoever has it; a
// request is answered from the owner's delta log or with a snapshot;
// membership decides visibility (up: counted, down: hidden but kept,
// permdown or goodbye: dropped).
package tracker
