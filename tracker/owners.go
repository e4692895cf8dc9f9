package tracker

import (
	"slices"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/internal/densemap"
)

// ownerIndex holds each local owner's presences, in the order they were
// tracked. Most owners (a connection on one page) are in one topic: their
// presence is the value of first, with no slice to allocate; an owner's
// second and later presences go to more. Owners are minted in increasing
// order (NewOwner), so first is a densemap. Guarded by Tracker.mu.
type ownerIndex struct {
	first densemap.Map[*crdt.Entry]
	more  map[Owner][]*crdt.Entry
}

func newOwnerIndex() ownerIndex {
	return ownerIndex{first: densemap.New[*crdt.Entry](0), more: make(map[Owner][]*crdt.Entry)}
}

// find returns owner's presence in topic, or nil, and whether owner has any presence.
func (x *ownerIndex) find(owner Owner, topic string) (e *crdt.Entry, any bool) {
	f := x.first.Get(uint64(owner))
	if f == nil {
		return nil, false
	}
	if f.Topic == topic {
		return f, true
	}
	for _, e := range x.more[owner] {
		if e.Topic == topic {
			return e, true
		}
	}
	return nil, true
}

// add records e as owner's latest presence; any says whether owner has one already.
func (x *ownerIndex) add(owner Owner, e *crdt.Entry, any bool) {
	if !any {
		x.first.Put(uint64(owner), e)
		return
	}
	x.more[owner] = append(x.more[owner], e)
}

// replace puts e in old's place (an Update).
func (x *ownerIndex) replace(owner Owner, old, e *crdt.Entry) {
	if x.first.Get(uint64(owner)) == old {
		x.first.Put(uint64(owner), e)
		return
	}
	es := x.more[owner]
	if i := slices.Index(es, old); i >= 0 {
		es[i] = e
	}
}

// remove forgets owner's presence e.
func (x *ownerIndex) remove(owner Owner, e *crdt.Entry) {
	es := x.more[owner]
	if x.first.Get(uint64(owner)) == e {
		if len(es) == 0 {
			x.first.Delete(uint64(owner))
			return
		}
		x.first.Put(uint64(owner), es[0])
		es = slices.Delete(es, 0, 1)
	} else if i := slices.Index(es, e); i >= 0 {
		es = slices.Delete(es, i, i+1)
	} else {
		return
	}
	if len(es) == 0 {
		delete(x.more, owner)
	} else {
		x.more[owner] = es
	}
}

// take forgets every presence of owner and returns them: first, then the
// others in the order they were tracked (nil, nil when there is none).
func (x *ownerIndex) take(owner Owner) (*crdt.Entry, []*crdt.Entry) {
	f := x.first.Delete(uint64(owner))
	if f == nil {
		return nil, nil
	}
	es := x.more[owner]
	if es != nil {
		delete(x.more, owner)
	}
	return f, es
}
