package crdt

import "iter"

// EntrySet is a set of entries with O(1) add, remove and membership test and
// no hashing: each entry remembers its position in the set it is in. It
// exists for the State's caller, which keeps the visible entries of every
// topic (an entry has one topic, so it is in one set at a time); a map keyed
// by *Entry cost a hash probe, a cache miss and map growth per presence.
//
// An entry can be in at most one EntrySet at a time; Add panics when e is in
// another one (a bug of the caller, never a consequence of input). The zero
// value is an empty set. Not safe for concurrent use; EntrySet writes only
// the entry's position, which no reader of an Entry's fields (the codec, a
// catch-up answer being built) touches.
type EntrySet struct {
	es []*Entry
}

// Len returns the number of entries in the set.
func (s *EntrySet) Len() int { return len(s.es) }

// Has reports whether e is in the set.
func (s *EntrySet) Has(e *Entry) bool {
	i := int(e.slot) - 1
	return i >= 0 && i < len(s.es) && s.es[i] == e
}

// Add adds e and reports whether it was not in the set already.
func (s *EntrySet) Add(e *Entry) bool {
	if s.Has(e) {
		return false
	}
	if e.slot != 0 {
		panic("crdt: EntrySet.Add of an entry that is in another set")
	}
	s.es = append(s.es, e)
	e.slot = int32(len(s.es))
	return true
}

// Remove removes e and reports whether it was in the set. The last entry
// takes e's place, so the order of All changes.
func (s *EntrySet) Remove(e *Entry) bool {
	if !s.Has(e) {
		return false
	}
	i, last := int(e.slot)-1, len(s.es)-1
	if i != last {
		m := s.es[last]
		s.es[i] = m
		m.slot = int32(i + 1)
	}
	s.es[last] = nil
	s.es = s.es[:last]
	e.slot = 0
	if c := cap(s.es); c > 64 && len(s.es) < c/4 {
		s.es = append(make([]*Entry, 0, 2*len(s.es)), s.es...) // give back a set that shrank
	}
	return true
}

// All returns the entries in no particular order. The set must not change
// while the sequence is being iterated.
func (s *EntrySet) All() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, e := range s.es {
			if !yield(e) {
				return
			}
		}
	}
}
