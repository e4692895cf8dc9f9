package crdt

import "github.com/headcount-io/headcount/internal/densemap"

// partition is one owner's part of the state: its entries by ref, the
// sequence number it has reached, whether it is hidden, its recent deltas
// and the deltas received ahead of a gap.
type partition struct {
	owner   Replica
	seq     Seq
	entries densemap.Map[*Entry] // by ref
	hidden  bool
	log     deltaLog
	pending []*Delta
}

func newPartition(owner Replica, o *Options, hidden bool) *partition {
	return &partition{
		owner:   owner,
		hidden:  hidden,
		entries: densemap.New[*Entry](0),
		log:     deltaLog{maxOps: o.LogMaxOps, maxBytes: o.LogMaxBytes},
	}
}

// all returns the partition's entries (in no particular order).
func (p *partition) all() []*Entry {
	out := make([]*Entry, 0, p.entries.Len())
	for e := range p.entries.All() {
		out = append(out, e)
	}
	return out
}

// visible returns the entries counted now: all of them unless hidden.
func (p *partition) visible() []*Entry {
	if p.hidden {
		return nil
	}
	return p.all()
}

// applyOps applies the ops of d that are newer than the partition's
// sequence, which must lie in [d.From, d.To). It returns the change, and
// logs the delta trimmed to the ops that took effect, so that the log stays
// contiguous and free of overlaps (a relay may send (0, 9] to a replica at 5).
func (p *partition) applyOps(d *Delta, s *State) Change {
	var ch Change
	if !p.hidden {
		adds := 0
		for _, op := range d.Ops {
			if op.Entry != nil {
				adds++
			}
		}
		ch.Joins = make([]*Entry, 0, adds) // one allocation instead of a growing slice
	}
	floor := p.seq
	eff := d
	if d.From < floor {
		eff = &Delta{Owner: d.Owner, From: floor, To: d.To, Ops: make([]Op, 0, len(d.Ops))}
	}
	for _, op := range d.Ops {
		if op.Entry == nil {
			e := p.entries.Delete(op.Ref)
			if e == nil {
				continue // removed in the overlap already
			}
			if !p.hidden {
				ch.Leaves = append(ch.Leaves, e)
			}
		} else {
			if op.Ref <= floor {
				continue // already applied: the overlap of (d.From, floor]
			}
			if p.entries.Get(op.Ref) != nil {
				continue
			}
			e := op.Entry
			e.owner = &p.owner
			e.Topic = s.internTopic(e.Topic)
			p.entries.Put(op.Ref, e)
			if !p.hidden {
				ch.Joins = append(ch.Joins, e)
			}
		}
		if eff != d {
			eff.Ops = append(eff.Ops, op)
		}
	}
	p.seq = d.To
	p.log.append(eff)
	return ch
}

// drainPending applies kept-aside deltas that have become contiguous and
// discards those that are now stale.
func (p *partition) drainPending(s *State) Change {
	var ch Change
	for progress := true; progress && len(p.pending) > 0; {
		progress = false
		keep := p.pending[:0]
		for _, d := range p.pending {
			switch {
			case d.To <= p.seq:
				progress = true // stale: drop
			case d.From <= p.seq:
				ch.add(p.applyOps(d, s))
				progress = true
			default:
				keep = append(keep, d)
			}
		}
		clear(p.pending[len(keep):])
		p.pending = keep
	}
	return ch
}

// keepAside stores a delta that arrived ahead of a gap, bounded by
// Options.MaxPending; the oldest-starting ones are kept.
func (p *partition) keepAside(d *Delta, max int) {
	for _, q := range p.pending {
		if q.From == d.From && q.To == d.To {
			return
		}
	}
	if len(p.pending) >= max {
		// Drop the one furthest ahead: it is the least useful until the gap is filled.
		far := 0
		for i, q := range p.pending {
			if q.From > p.pending[far].From {
				far = i
			}
		}
		if p.pending[far].From <= d.From {
			return
		}
		p.pending[far] = d
		return
	}
	p.pending = append(p.pending, d)
}
