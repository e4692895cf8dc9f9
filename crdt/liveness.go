package crdt

import "sort"

// Hide hides r's partition (r is down): its entries leave the visible set
// but are kept. Input about r keeps being applied while hidden. A remote
// partition is created hidden, so hiding an unknown replica only records
// its incarnation.
func (s *State) Hide(r Replica) Change {
	p, ch := s.partitionFor(r)
	if p == nil || p.hidden {
		return ch
	}
	ch.Leaves = append(ch.Leaves, p.all()...)
	p.hidden = true
	return ch
}

// Show makes r's partition visible (r is up), creating it if needed.
func (s *State) Show(r Replica) Change {
	p, ch := s.partitionFor(r)
	if p == nil || !p.hidden {
		return ch
	}
	p.hidden = false
	ch.Joins = append(ch.Joins, p.all()...)
	return ch
}

// Drop removes r's partition (and any older incarnation of r's name) and
// remembers r as dead, so late messages from it are ignored.
func (s *State) Drop(r Replica) Change {
	if r.Name == s.self.Name {
		return Change{}
	}
	var ch Change
	if p := s.parts[r.Name]; p != nil && p.owner.Epoch <= r.Epoch {
		ch = s.drop(p)
	}
	s.markDead(r)
	return ch
}

// Revive forgets that r was dropped, when a membership layer sees r alive
// again after it was given up (a partition that outlasted the permdown
// period). Older incarnations stay dead.
func (s *State) Revive(r Replica) {
	if e, ok := s.dead[r.Name]; ok && e == r.Epoch {
		if r.Epoch == 0 {
			delete(s.dead, r.Name)
		} else {
			s.dead[r.Name] = r.Epoch - 1
		}
	}
}

// ForgetDead forgets the dead incarnations of name, bounding the memory
// that dead replicas take (Phoenix #179). The caller decides when a name is
// old enough to forget.
func (s *State) ForgetDead(name string) { delete(s.dead, name) }

// DeadNames returns the names with a remembered dead incarnation.
func (s *State) DeadNames() []string {
	out := make([]string, 0, len(s.dead))
	for n := range s.dead {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
