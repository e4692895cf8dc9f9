package crdt

import "sort"

// split cuts a snapshot into parts of at most SnapshotChunk entries.
func (s *State) split(sn *Snapshot) []Message {
	n := len(sn.Entries)
	chunk := s.opts.SnapshotChunk
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

// Since returns what a replica holding owner's chain up to since needs:
// deltas from the log, merged into messages of about maxOps operations, or
// a snapshot when the log does not reach back that far. It returns nil when
// this state holds nothing newer of that incarnation.
func (s *State) Since(owner Replica, since Seq, maxOps int) []Message {
	p := s.parts[owner.Name]
	if p == nil || p.owner.Epoch != owner.Epoch {
		return nil
	}
	top := p.seq
	if p == s.local {
		top = s.bufFrom
	}
	if since >= top {
		return nil
	}
	if ds, ok := p.log.since(since); ok {
		return mergeDeltas(ds, maxOps)
	}
	if p == s.local {
		return s.split(s.localSnapshot())
	}
	return s.split(&Snapshot{Owner: p.owner, Seq: top, Entries: p.all()})
}

// localSnapshot returns the local partition exactly as peers know it: as of
// the last flush, without buffered adds and with the entries that buffered
// removes took out.
func (s *State) localSnapshot() *Snapshot {
	top := s.bufFrom
	es := make([]*Entry, 0, len(s.local.entries))
	for _, e := range s.local.entries {
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
	d := &Digest{Items: make([]DigestItem, 0, len(s.parts))}
	for _, p := range s.parts {
		d.Items = append(d.Items, DigestItem{Owner: p.owner, Seq: s.Seq(p.owner)})
	}
	sort.Slice(d.Items, func(i, j int) bool { return d.Items[i].Owner.Name < d.Items[j].Owner.Name })
	return d
}

// Behind reports whether a peer's digest item shows data this state lacks,
// and if so from which sequence to ask.
func (s *State) Behind(it DigestItem) (since Seq, behind bool) {
	if it.Owner.Name == s.self.Name || it.Seq == 0 || s.IsDead(it.Owner) {
		return 0, false
	}
	p := s.parts[it.Owner.Name]
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
