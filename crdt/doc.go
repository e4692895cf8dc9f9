// Package crdt is Headcount's replicated data: a delta-state OR-Set of
// presences in which every entry has a single writer, its owner replica.
//
// The state is a product of per-owner partitions. Each partition is a chain
// ordered by its owner's sequence number, so joining two states is "the
// higher sequence per owner wins": commutative, associative and idempotent by
// construction, with one counter per owner instead of a dot cloud. The rules
// that keep it so:
//
//   - a Delta from owner r covers sequence numbers (From, To] and is applied
//     only when From <= local(r) < To; when From > local(r) it is a gap: it is
//     kept aside and the caller is told which range to ask for;
//   - a Snapshot replaces a partition only when its sequence is higher, and is
//     never merged element by element into a newer partial state;
//   - remote input never touches the local owner's partition;
//   - a dropped (dead) incarnation is remembered, so its late messages are
//     ignored.
//
// Every operation that changes what is visible returns the Change it made, so
// that callers keep counters incrementally instead of rescanning.
//
// This package is pure data: it has no goroutines, reads no clock, does no
// I/O and does not log. It is not safe for concurrent use; the tracker
// serialises access to it.
package crdt
