package crdt

import "sort"

// Hide hides r's partition (r is down): its entries leave the visible set
// but are kept. Input about r keeps being applied while hidden. A remote
// partition is created hidden, so hiding an unknown replica only records
// its incarnation.
func (s *State) Hide(r Replica) Change {
	p := s.partitionFor(r)
	if p == nil || p.hidden {
		return Change{}
	}
	p.hidden = true
	return Change{Leaves: p.all()}
}

// Show makes r's partition visible (r is up), creating it if needed.
func (s *State) Show(r Replica) Change {
	p := s.partitionFor(r)
	if p == nil || !p.hidden {
		return Change{}
	}
	p.hidden = false
	return Change{Joins: p.all()}
}

// Drop removes r's partition, if that incarnation is the one held for its
// name, and remembers r as dead, so late messages from it are ignored.
// Another incarnation of the name is left alone.
func (s *State) Drop(r Replica) Change {
	if r.Name == s.self.Name {
		return Change{}
	}
	var ch Change
	if p := s.parts[r.Name]; p != nil && p.owner.Epoch == r.Epoch {
		ch = s.drop(p)
	}
	s.markDead(r)
	return ch
}

// Revive forgets that r was dropped, when a membership layer sees r alive
// again after it was given up (a partition that outlasted the permdown
// period, or an incarnation membership announces again). Other dropped
// incarnations stay dead.
func (s *State) Revive(r Replica) {
	es := s.dead[r.Name]
	for i, e := range es {
		if e == r.Epoch {
			es = append(es[:i:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(s.dead, r.Name)
	} else {
		s.dead[r.Name] = es
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
