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
// Events wait in one bounded queue per node, in the order they happened; at most one batch is
// in flight, so a topic's events arrive in order. A batch leaves when it holds BatchMax events,
// when its oldest event has waited BatchWait, or at once after a quiet spell of BatchWait. A non-2xx answer, a timeout or a transport error is
// retried with exponential backoff and jitter up to MaxAttempts; a full queue drops its oldest
// event. Either loss is counted (headcount_webhook_events_dropped_total) and repaired: the
// topic is marked dirty and its current state is sent again after the next success.
//
// # Ownership and failover
//
// The owner of a topic is the member with the highest hash of (member name, topic) among the
// members this node sees alive. Adding a member moves only the topics it now owns; removing one
// moves only the topics it owned. Every node keeps every topic's state, so when a member dies,
// leaves or is partitioned away, the nodes that take over its topics send each one's current
// state at once (within failure detection). When a member appears (a join, a restart, a healed
// partition), the node that loses topics to it keeps delivering their queued events for Handover,
// then only those that still agree with the topic's state as it sees it; and every node sends the current state of every topic it owns again Settle
// after the change, so whatever a separated member sent while it believed it owned a topic is
// superseded. After the cluster quiesces, the last event the receiver got for every topic
// therefore matches the truth.
//
// Duplicates happen only around an ownership change: a takeover, a join or a heal re-sends
// topic_occupied (and topic_counts) for occupied topics and topic_vacated for topics vacated
// within Retain, with new ids. During a partition each side has its own owner, so both may send
// for one topic. Receivers should treat events as state ("topic T is now occupied"), not as
// increments. A re-sent topic_vacated carries the peak and duration its sender saw.
//
// The package never stores events on disk and never blocks the tracker; Core, the decision
// logic, has no goroutines, clock or network, and takes the time as an argument.
package webhook
