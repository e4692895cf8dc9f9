package crdt

// Entry is one presence: a connection of its owner replica in a topic.
// Entries are immutable once added; an update is a remove of the old Ref and
// an add under a new one. Callers must not modify an Entry they are handed.
type Entry struct {
	// Ref is the sequence number at which the owner added the entry; with
	// the owner it identifies the entry cluster-wide.
	Ref Seq
	// Topic is what the presence is in (a page, a video, a room).
	Topic string
	// User is the logged-in user's id, or "" for an anonymous viewer.
	User string
	// Conn is the owner's connection id.
	Conn uint64
	// Meta is opaque application data, usually nil.
	Meta []byte

	owner *Replica
	slot  int32 // 1 + the entry's index in its EntrySet, 0 when in none
}

// Owner returns the replica that owns the entry (the zero Replica for an
// entry not yet stored in a State).
func (e *Entry) Owner() Replica {
	if e.owner == nil {
		return Replica{}
	}
	return *e.owner
}

// Anonymous reports whether the entry is an anonymous viewer.
func (e *Entry) Anonymous() bool { return e.User == "" }

// size is the approximate number of bytes the entry costs in a log or on the
// wire; it bounds delta logs.
func (e *Entry) size() int { return 16 + len(e.Topic) + len(e.User) + len(e.Meta) }

// Change is what an operation made visible or invisible. Entries are shared
// with the State and must not be modified.
type Change struct {
	Joins  []*Entry
	Leaves []*Entry
}

// Empty reports whether the change has neither joins nor leaves.
func (c Change) Empty() bool { return len(c.Joins) == 0 && len(c.Leaves) == 0 }

func (c *Change) add(o Change) {
	c.Joins = append(c.Joins, o.Joins...)
	c.Leaves = append(c.Leaves, o.Leaves...)
}
