package crdt

import (
	"fmt"

	"github.com/headcount-io/headcount/internal/densemap"
)

// checkDelta rejects a delta that breaks the chain's rules: a backwards range,
// a range that is not one sequence number per op (every add and every remove
// consumes exactly one, so an honest owner can never jump its sequence without
// sending the ops: a delta claiming (5, 2^40] with three ops is a forgery that
// would freeze the partition), adds outside it or not strictly increasing,
// removes at or after its end.
func checkDelta(d *Delta) error {
	if d.To < d.From || d.To-d.From != uint64(len(d.Ops)) {
		return fmt.Errorf("%w: delta range (%d, %d] for %d ops", ErrInvalid, d.From, d.To, len(d.Ops))
	}
	var last Seq
	for _, op := range d.Ops {
		if op.Entry != nil && (op.Ref <= d.From || op.Ref > d.To || op.Entry.Ref != op.Ref) {
			return fmt.Errorf("%w: add ref %d outside (%d, %d]", ErrInvalid, op.Ref, d.From, d.To)
		}
		if op.Entry != nil {
			if op.Ref <= last {
				return fmt.Errorf("%w: add refs not increasing (%d after %d)", ErrInvalid, op.Ref, last)
			}
			last = op.Ref
		}
		if op.Entry == nil && op.Ref >= d.To {
			return fmt.Errorf("%w: remove ref %d not before %d", ErrInvalid, op.Ref, d.To)
		}
	}
	return nil
}

// ApplyDelta applies a remote owner's delta. The delta must not be used by
// the caller afterwards: its entries become part of the state. It returns
// ErrInvalid (and changes nothing) for a malformed delta.
func (s *State) ApplyDelta(d *Delta) (Change, Status, error) {
	if err := checkDelta(d); err != nil {
		return Change{}, Ignored, err
	}
	p := s.partitionFor(d.Owner)
	if p == nil {
		return Change{}, Ignored, nil
	}
	switch {
	case d.To <= p.seq:
		return Change{}, Stale, nil
	case d.From > p.seq:
		p.keepAside(d, s.opts.MaxPending)
		return Change{}, Gap, nil
	}
	ch := p.applyOps(d, s) // not copied: drainPending usually adds nothing
	ch.add(p.drainPending(s))
	if a := s.gathering[p.owner.Name]; a != nil && a.seq <= p.seq {
		delete(s.gathering, p.owner.Name) // overtaken by deltas
	}
	return ch, Applied, nil
}

// ApplySnapshot replaces a remote owner's partition with sn when sn is newer
// than what is held; it is never merged element by element into a newer
// partial state. It returns ErrInvalid for a malformed snapshot.
func (s *State) ApplySnapshot(sn *Snapshot) (Change, Status, error) {
	if sn.Parts > 1 {
		return s.applyPart(sn)
	}
	seen := make(map[Seq]struct{}, len(sn.Entries))
	for _, e := range sn.Entries {
		if e == nil || e.Ref == 0 || e.Ref > sn.Seq {
			return Change{}, Ignored, fmt.Errorf("%w: snapshot entry outside (0, %d]", ErrInvalid, sn.Seq)
		}
		if _, dup := seen[e.Ref]; dup {
			return Change{}, Ignored, fmt.Errorf("%w: duplicate ref %d in snapshot", ErrInvalid, e.Ref)
		}
		seen[e.Ref] = struct{}{}
	}
	p := s.partitionFor(sn.Owner)
	if p == nil {
		return Change{}, Ignored, nil
	}
	if sn.Seq <= p.seq {
		return Change{}, Stale, nil
	}
	var ch Change
	next := densemap.New[*Entry](len(sn.Entries))
	for _, e := range sn.Entries {
		if old := p.entries.Get(e.Ref); old != nil {
			next.Put(e.Ref, old) // same ref, same immutable entry
			continue
		}
		e.owner = &p.owner
		e.Topic = s.internTopic(e.Topic)
		next.Put(e.Ref, e)
		if !p.hidden {
			ch.Joins = append(ch.Joins, e)
		}
	}
	if !p.hidden {
		for e := range p.entries.All() {
			if next.Get(e.Ref) == nil {
				ch.Leaves = append(ch.Leaves, e)
			}
		}
	}
	p.entries = next
	p.seq = sn.Seq
	p.log.reset()
	ch.add(p.drainPending(s))
	return ch, Applied, nil
}

// applyPart stores one part of a snapshot and applies the whole snapshot
// when its last part arrives. One snapshot per owner is gathered at a time;
// a part of a newer one replaces an unfinished older one.
func (s *State) applyPart(sn *Snapshot) (Change, Status, error) {
	if sn.Parts > MaxSnapshotParts || sn.Part >= sn.Parts {
		return Change{}, Ignored, fmt.Errorf("%w: snapshot part %d of %d", ErrInvalid, sn.Part, sn.Parts)
	}
	if sn.Owner.Name == s.self.Name || s.IsDead(sn.Owner) {
		return Change{}, Ignored, nil
	}
	if p := s.parts[sn.Owner.Name]; p != nil {
		switch {
		case p.owner.Epoch != sn.Owner.Epoch:
			return Change{}, Ignored, nil // data never supersedes an incarnation
		case p.owner.Epoch == sn.Owner.Epoch && sn.Seq <= p.seq:
			return Change{}, Stale, nil
		}
	}
	a := s.gathering[sn.Owner.Name]
	if a != nil && a.owner == sn.Owner && a.seq > sn.Seq {
		return Change{}, Stale, nil // a newer snapshot is being gathered
	}
	if a == nil || a.owner != sn.Owner || a.seq != sn.Seq || len(a.got) != int(sn.Parts) {
		a = &assembly{owner: sn.Owner, seq: sn.Seq, got: make([]bool, sn.Parts)}
		s.gathering[sn.Owner.Name] = a
	}
	if a.got[sn.Part] {
		return Change{}, Stale, nil
	}
	a.got[sn.Part] = true
	a.n++
	a.entries = append(a.entries, sn.Entries...)
	if a.n < len(a.got) {
		return Change{}, Partial, nil
	}
	delete(s.gathering, sn.Owner.Name)
	return s.ApplySnapshot(&Snapshot{Owner: a.owner, Seq: a.seq, Entries: a.entries})
}
