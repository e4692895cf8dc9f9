// Package gossip links a tracker to the other nodes of a cluster through hashicorp/memberlist.
//
// A Node owns a memberlist instance and one worker goroutine, the only caller of the tracker's
// replication methods (Tick, Handle, ReplicaUp, ReplicaDown, ReplicaLeft, Leave). It never touches
// the tracker's state otherwise and never calls the local API (Track, Untrack).
//
// # Membership -> tracker
//
// Every node publishes a node meta (<= 512 bytes): the tracker's boot epoch, ProtocolVersion and its
// HTTP address. A memberlist join, or an update carrying a new epoch, becomes ReplicaUp(name,
// epoch): a restarted node replaces its previous incarnation at once, even when memberlist sees a
// fast restart only as an update. memberlist cannot tell a graceful leave from a failure (the
// State of the node passed to NotifyLeave is never set), so the leave intent is the tracker's
// goodbye: the tracker drops a replica's presences as soon as its Goodbye message arrives, and a
// later memberlist leave of that replica becomes ReplicaLeft. memberlist may hand a leave over
// before a goodbye received ahead of it, so a leave without a goodbye hides the replica's
// presences at once (ReplicaDown) and waits five GossipIntervals for a goodbye (the frames
// already queued are handled first) to tell a graceful leave (ReplicaLeft) from a failure; a
// death refuted meanwhile shows them again. A failure stays ReplicaDown: its presences stay
// hidden and are dropped by the tracker after its PermdownPeriod. Membership callbacks run under memberlist's lock, so they only copy the event
// into an unbounded FIFO (never lossy, never blocking); the worker applies them in order to its
// one record per member name and publishes a view for readers (Members): alive members, failed
// ones (with since when) until they come back or ReconnectTimeout reaps them, and incompatible
// ones (a bad node meta or another ProtocolVersion), listed but never counted.
//
// # Dissemination
//
// The tracker returns Outbound messages. Each is encoded once, without its sender
// (crdt.MarshalBody), and sent to its targets: ToAll = every live peer, ToOne = the peer with that
// name and epoch, ToSome = Fanout random live peers (digests). Messages to one peer are packed into
// frames (frame.go): a tag byte, the sender once, then the bodies. The sender is its short id, four
// bytes of a hash of its name and epoch that every receiver computes for the members membership
// announced; a frame whose id no member (or more than one) has is dropped and counted
// (UnknownSender), never attributed to a guess, and catch-up repairs it once the sender is
// announced. A lone add is its entry plus 7 bytes of frame and body header. A frame that fits MaxPacketSize goes as one best-effort datagram
// (memberlist SendBestEffort, UDP) straight from the worker; larger messages go to the peer's
// bounded stream queue, drained by one sender goroutine per peer that packs everything queued into
// as few reliable streams as possible (memberlist SendReliable opens one TCP connection per call,
// so batching matters). A full queue drops and counts: one slow peer never blocks the others, and
// the tracker's digests find and repair what was lost. Memberlist's broadcast queue is not used
// (it is not relayed and silently drops items larger than a packet) and push/pull carries no user
// state, so idle traffic is the tracker's digests plus memberlist's probes: it does not grow with
// the number of presences.
//
// Received frames are copied in NotifyMsg and handed to the worker through a bounded inbox
// (count and bytes); when it is full frames are dropped and counted. Corrupt frames or messages
// are counted and dropped, never a panic. Nodes of another ProtocolVersion are ignored by
// membership (a Warn names both versions) and their frames are refused as bad frames.
//
// The worker ticks the tracker every TickInterval (digests, permdown timers) and on local
// changes, paced by a token bucket: a change is flushed at once while the node is under its
// flush budget (one flush per batching window, up to 4 back to back), and only over it does it
// wait for the next token, with every change made meanwhile. The window is BroadcastInterval,
// stretched in a cluster of more than 21 nodes so flushes stay within FlushPacketBudget
// datagrams a second. A single track thus reaches every peer within one datagram's delay, even
// right after another, while a burst is coalesced into large deltas, one per window.
//
// Limits: memberlist refuses streams over 20 MiB, so every encoded message, including the
// tracker's snapshot of one node's partition sent to a joining peer, must fit MaxMessageSize
// (16 MiB by default, about 900k presences of 20 bytes encoded). A larger message is dropped and
// counted in Stats.Oversize; the tracker would have to split such a snapshot.
//
// # Seeds, re-joins and partitions
//
// New joins Config.Join once; if no seed answers it retries with exponential backoff in the
// background. Every RejoinInterval the node joins the seeds and every known peer that memberlist
// does not see alive (failed less than ReconnectTimeout ago): memberlist forgets dead nodes, so
// without this a partition would never heal.
//
// # Leaving
//
// Leave sends the tracker's goodbye to every live peer by datagram and by reliable stream, then
// leaves memberlist and shuts down. Close shuts down without any of it: to the peers it is a
// crash.
//
// # On a service's memberlist
//
// A Go service that already runs memberlist for itself can carry Headcount on it instead of
// running a second cluster: NewHost wraps the service's delegates and creates its memberlist,
// and a Node with Config.Host uses it (package node: Config.Gossip.Host). User messages carry a
// one-byte kind prefix, the node meta and push/pull state are split into sections (service,
// Headcount), and membership events are fanned out to both. The service keeps joining, leaving
// and shutting down its memberlist; the Node's Leave and Close withdraw its meta section
// instead, and members without a Headcount section are no Headcount members. See host.go and
// examples/hosted.
//
// # Security
//
// SecretKeys turn on memberlist's AES-GCM encryption of all traffic (see ParseKeyFile and
// Node.Keyring for rotation) and Label separates clusters sharing a network. Every received frame
// and message is size-checked (MaxMessageSize) before it is decoded.
//
// gossip must never block memberlist's callbacks, never call memberlist from inside them, and never
// send a node's presences anywhere but to the members of its own cluster.
package gossip
