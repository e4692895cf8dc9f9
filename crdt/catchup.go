package crdt

import (
	"slices"
	"sort"
	"strings"
)

// split cuts a snapshot into parts of at most chunk entries, sorting its
// entries in place.
func split(sn *Snapshot, chunk int) []Message {
	n := len(sn.Entries)
	if n <= chunk {
		return []Message{sn}
	}
	if parts := (n + chunk - 1) / chunk; parts > MaxSnapshotParts {
		chunk = (n + MaxSnapshotParts - 1) / MaxSnapshotParts
	}
	// Part i of one (owner, seq) must hold the same entries whoever cuts
	// it and whenever, so parts of two answers can be gathered together.
	sort.Slice(sn.Entries, func(i, j int) bool { return sn.Entries[i].Ref < sn.Entries[j].Ref })
	parts := (n + chunk - 1) / chunk
	out := make([]Message, 0, parts)
	for i := 0; i < parts; i++ {
		es := sn.Entries[i*chunk : min((i+1)*chunk, n)]
		out = append(out, &Snapshot{Owner: sn.Owner, Seq: sn.Seq, Entries: es, Part: uint32(i), Parts: uint32(parts)})
	}
	return out
}

// CatchUp is the answer to a catch-up request as taken from a State, not
// yet built: the logged deltas it merges, or the entries of the snapshot it
// sorts and cuts into parts. It holds only data the State never modifies
// again (logged deltas and stored entries are immutable), so Build may run
// after the caller has released whatever guards the State, while the State
// changes: the answer stays the one taken. The zero CatchUp builds nothing.
type CatchUp struct {
	deltas []*Delta
	snap   *Snapshot
	maxOps int
	chunk  int
}

// IsSnapshot reports whether the answer is a snapshot (the log does not
// reach back far enough).
func (c CatchUp) IsSnapshot() bool { return c.snap != nil }

// Build returns the answer's messages: the deltas merged into messages of
// about maxOps operations, or the snapshot in parts of at most
// Options.SnapshotChunk entries. It costs what taking it saved: O(n log n)
// for a snapshot of n entries. Call it once.
func (c CatchUp) Build() []Message {
	switch {
	case c.snap != nil:
		return split(c.snap, c.chunk)
	case len(c.deltas) > 0:
		return mergeDeltas(c.deltas, c.maxOps)
	}
	return nil
}

// CatchUp takes what a replica holding owner's chain up to since needs:
// deltas from the log, or a snapshot when the log does not reach back that
// far. Taking it copies pointers only (to the logged deltas, or to the
// partition's entries) and sorts nothing; Build does the rest. It is empty
// when this state holds nothing newer of that incarnation.
func (s *State) CatchUp(owner Replica, since Seq, maxOps int) CatchUp {
	p := s.parts[owner.Name]
	if p == nil || p.owner.Epoch != owner.Epoch {
		return CatchUp{}
	}
	top := p.seq
	if p == s.local {
		top = s.bufFrom
	}
	if since >= top {
		return CatchUp{}
	}
	if ds, ok := p.log.since(since); ok {
		// The log's array is compacted in place as it is trimmed: copy.
		return CatchUp{deltas: slices.Clone(ds), maxOps: maxOps}
	}
	if p == s.local {
		return CatchUp{snap: s.localSnapshot(), chunk: s.opts.SnapshotChunk}
	}
	return CatchUp{snap: &Snapshot{Owner: p.owner, Seq: top, Entries: p.all()}, chunk: s.opts.SnapshotChunk}
}

// Since returns what a replica holding owner's chain up to since needs:
// deltas from the log, merged into messages of about maxOps operations, or
// a snapshot when the log does not reach back that far. It returns nil when
// this state holds nothing newer of that incarnation. It is CatchUp and
// Build in one call.
func (s *State) Since(owner Replica, since Seq, maxOps int) []Message {
	return s.CatchUp(owner, since, maxOps).Build()
}

// localSnapshot returns the local partition exactly as peers know it: as of
// the last flush, without buffered adds and with the entries that buffered
// removes took out.
func (s *State) localSnapshot() *Snapshot {
	top := s.bufFrom
	es := make([]*Entry, 0, s.local.entries.Len())
	for e := range s.local.entries.All() {
		if e.Ref <= top {
			es = append(es, e)
		}
	}
	for _, op := range s.buf {
		if op.removed != nil && op.Ref <= top {
			es = append(es, op.removed)
		}
	}
	return &Snapshot{Owner: s.self, Seq: top, Entries: es}
}

// mergeDeltas joins consecutive deltas into messages of about maxOps ops.
func mergeDeltas(ds []*Delta, maxOps int) []Message {
	var out []Message
	var cur *Delta
	for _, d := range ds {
		if cur != nil && maxOps > 0 && len(cur.Ops)+len(d.Ops) > maxOps {
			out = append(out, cur)
			cur = nil
		}
		if cur == nil {
			cur = &Delta{Owner: d.Owner, From: d.From, To: d.To, Ops: append([]Op(nil), d.Ops...)}
			continue
		}
		cur.To = d.To
		cur.Ops = append(cur.Ops, d.Ops...)
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// Digest returns this state's sequence for every owner it holds, itself
// included, sorted by name.
func (s *State) Digest() *Digest {
	if s.byName == nil {
		// Partitions come and go with membership, digests go out every DigestInterval: sort
		// once per change of the set, not once per digest.
		s.byName = make([]*partition, 0, len(s.parts))
		for _, p := range s.parts {
			s.byName = append(s.byName, p)
		}
		slices.SortFunc(s.byName, func(a, b *partition) int { return strings.Compare(a.owner.Name, b.owner.Name) })
	}
	d := &Digest{Items: make([]DigestItem, len(s.byName))}
	for i, p := range s.byName {
		seq := p.seq
		if p == s.local {
			seq = s.bufFrom // only what has been flushed is visible to peers (Seq)
		}
		d.Items[i] = DigestItem{Owner: p.owner, Seq: seq}
	}
	return d
}

// Behind reports whether a peer's digest item shows data this state lacks,
// and if so from which sequence to ask.
func (s *State) Behind(it DigestItem) (since Seq, behind bool) {
	p := s.parts[it.Owner.Name]
	if p != nil && p.owner.Epoch == it.Owner.Epoch && p.seq >= it.Seq {
		// The common answer, with one lookup: every other check below would say the same.
		return 0, false
	}
	if it.Owner.Name == s.self.Name || it.Seq == 0 || s.IsDead(it.Owner) {
		return 0, false
	}
	switch {
	case p == nil:
		return 0, true
	case p.owner.Epoch != it.Owner.Epoch:
		return 0, false // another incarnation: membership decides which is current
	case p.seq < it.Seq:
		return p.seq, true
	}
	return 0, false
}
