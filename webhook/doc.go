// Package webhook tells a backend over HTTP when a topic fills, empties or changes, with no
// central store: every node runs the same per-topic state machine over its own replicated
// counts, and exactly one node, the topic's owner by rendezvous hashing over the members it sees
// alive, sends that topic's events.
//
// # Events
//
// A delivery is one POST with Content-Type application/json and the body
// {"time_ms": T, "events": [...]}, signed in the header
// X-Headcount-Signature: sha256=<hex HMAC-SHA256 of the raw body>. The events are:
//
//	{"id":I,"name":"topic_occupied","topic":T}
//	{"id":I,"name":"topic_vacated","topic":T,"peak":{"viewers":{"count":V},"users":{"count":U}},"occupied_ms":D}
//	{"id":I,"name":"topic_counts","topic":T,"viewers":{"count":V},"users":{"count":U}}
//
// Occupied means at least one tracked presence anywhere in the cluster: observers add no
// presence, so they never occupy. A topic becomes vacated VacateGrace after its last presence
// left, so a page reload inside the grace sends nothing. topic_counts is sent at most once per
// Debounce per topic, when the counts differ from the last ones sent. Roll-up topics (ending in
// "*") send nothing. An event's id is unique and stays the same across retries of its batch (a batch whose answer
// came after Timeout is sent again: receivers drop ids they have processed);
// time_ms is when the batch was formed and also stays the same, so a retry carries the same
// body and signature.
//
// # Delivery
//
// Each topic's events wait in order in a per-node outbox, and topics take turns oldest first;
// at most one batch is in flight, so one node's events for a topic arrive in order. A batch
// leaves when it holds BatchMax events, when its oldest event has waited BatchWait, or at once
// after a quiet spell of BatchWait. A non-2xx answer, a timeout or a transport error is retried
// with exponential backoff and jitter up to MaxAttempts. The outbox holds at most QueueMax
// events: when it is full, and when a batch fails MaxAttempts times, a topic's events coalesce
// into a mark "send this topic's state", which keeps the topic's place in line; both are
// counted (headcount_webhook_events_dropped_total). Coalescing can hide a transition, never the
// final state, and never starves a topic.
//
// # Ownership and failover
//
// The owner of a topic is the member with the highest hash of (member name, topic) among the
// members this node sees alive. Adding a member moves only the topics it now owns; removing one
// moves only the topics it owned. Every node keeps every topic's state, so when a member dies,
// leaves or is partitioned away, the nodes that take over its topics send each one's current
// state at once (within failure detection). When a member appears (a join, a restart, a healed
// partition), the node that loses topics to it keeps delivering their queued events for
// Handover, then only those that still agree with the topic's state as it sees it; and every
// node sends the current state of every topic it owns again Settle after the change (a member
// restarting under its name, see MemberRestarted, counts as one), so whatever a separated member
// sent while it believed it owned a topic is superseded. A node also corrects its own last word
// on a topic it no longer owns: having told the receiver occupied (or tried to: a timed-out POST
// may have been processed), it sends topic_vacated when it sees the topic empty, and the
// reverse (a topic_occupied alone: counts follow in the owner's next re-send or the next
// change), since the owner may never have seen what it reported. After the cluster quiesces,
// every node's view is the truth and every node's last word agrees with its view, so the last
// event the receiver got for every topic matches the truth. A node that has not caught up (after
// a heal) may send a wrong state for a while, corrected when its view catches up. The simulator
// in sim_test.go checks all this over random schedules.
//
// Duplicates happen only around an ownership change: a takeover, a join or a heal re-sends
// topic_occupied (and topic_counts) for occupied topics and topic_vacated for topics vacated
// within Retain, with new ids, and a former owner's corrections may repeat the new owner's
// events. During a partition each side has its own owner, so both may send for one topic.
// Receivers should treat events as state ("topic T is now occupied"), not as increments. A
// re-sent topic_vacated carries the peak and duration its sender saw. Ids are unique per sender
// incarnation: the same id is only ever a retry of the same batch, so de-duplicating by id
// removes retries, not re-sent states. Two senders' events for one topic have no order between
// them.
//
// # Limits
//
// With no store, some losses cannot be repaired: a node that crashes before its presences
// replicated can take their join or their end with it, and a sender that crashes leaves its
// topic_occupied standing for a topic the node taking over never saw occupied; a sender that
// dies while partitioned away from the others, or a node that saw the others fail while they
// never saw it fail (a partition shorter than their failure detection), leaves events no one
// supersedes until the topic changes again; a whole-cluster crash loses every topic's state (no topic_vacated for
// those occupied then). The promise assumes a member's appearance reaches every node within
// Settle - Handover - Timeout of the first.
//
// The package never stores events on disk and never blocks the tracker; Core, the decision
// logic, has no goroutines, clock or network, and takes the time as an argument.
package webhook
