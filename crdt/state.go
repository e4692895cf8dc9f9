package crdt

import (
	"errors"
	"fmt"
	"sort"
)

// Options bound the memory a State spends on catch-up data.
type Options struct {
	// LogMaxOps is the most operations kept in one partition's delta log.
	LogMaxOps int
	// LogMaxBytes is the most bytes (approximate) kept in one partition's
	// delta log.
	LogMaxBytes int
	// MaxPending is the most deltas kept aside per partition while waiting
	// for a gap to be filled.
	MaxPending int
	// SnapshotChunk is the most entries in one snapshot message; a larger
	// partition is sent as several parts (see Snapshot).
	SnapshotChunk int
}

// DefaultOptions returns the options used when a field is zero.
func DefaultOptions() Options {
	return Options{LogMaxOps: 16384, LogMaxBytes: 2 << 20, MaxPending: 64, SnapshotChunk: 65536}
}

// Status says what applying a remote message did.
type Status uint8

const (
	// Applied: the message brought new operations.
	Applied Status = iota
	// Stale: everything in the message was already known.
	Stale
	// Gap: the message starts after what is known; it was kept aside and
	// the caller should ask for the owner's operations since Seq(owner).
	Gap
	// Ignored: the message is about this replica itself, or about a dead
	// or superseded incarnation.
	Ignored
	// Partial: one part of a snapshot was stored; the snapshot applies when
	// all its parts have arrived.
	Partial
)

var statusNames = [...]string{"applied", "stale", "gap", "ignored", "partial"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// ErrInvalid is returned for a message whose content breaks the chain's
// rules (a ref outside its delta's range, a snapshot entry newer than the
// snapshot, duplicate refs). Such a message is rejected whole.
var ErrInvalid = errors.New("crdt: invalid message")

// State is one replica's view of every owner's partition. The zero value is
// not usable; call NewState.
type State struct {
	self  Replica
	opts  Options
	local *partition
	parts map[string]*partition // by replica name: one incarnation per name
	// byName is parts sorted by name, for Digest; nil when a partition was added or dropped
	// since it was built.
	byName    []*partition
	dead      map[string][]uint64 // name -> dropped epochs (at most maxDeadEpochs, newest last)
	buf       []Op                // local ops not yet cut into deltas
	bufFrom   Seq
	topics    map[string]string    // interned topic strings
	gathering map[string]*assembly // snapshots arriving in parts, by owner name
}

// assembly gathers the parts of one snapshot.
type assembly struct {
	owner   Replica
	seq     Seq
	got     []bool
	n       int
	entries []*Entry
}

// NewState returns the state of replica self, holding only its own empty
// partition. Zero fields of opts take DefaultOptions.
func NewState(self Replica, opts Options) *State {
	d := DefaultOptions()
	if opts.LogMaxOps <= 0 {
		opts.LogMaxOps = d.LogMaxOps
	}
	if opts.LogMaxBytes <= 0 {
		opts.LogMaxBytes = d.LogMaxBytes
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = d.MaxPending
	}
	if opts.SnapshotChunk <= 0 {
		opts.SnapshotChunk = d.SnapshotChunk
	}
	s := &State{
		self:      self,
		opts:      opts,
		parts:     make(map[string]*partition),
		dead:      make(map[string][]uint64),
		topics:    make(map[string]string),
		gathering: make(map[string]*assembly),
	}
	s.local = newPartition(self, &s.opts, false)
	s.parts[self.Name] = s.local
	return s
}

// Self returns the replica that owns the local partition.
func (s *State) Self() Replica { return s.self }

func (s *State) internTopic(t string) string {
	if c, ok := s.topics[t]; ok {
		return c
	}
	s.topics[t] = t
	return t
}

// ReleaseTopic tells the state that no visible entry refers to topic any
// more, so its interned string can be freed; the caller, which counts
// presences per topic, knows when that is. Hidden entries keep their copy.
func (s *State) ReleaseTopic(topic string) { delete(s.topics, topic) }

// Add adds a presence to the local partition under a fresh ref and returns
// the new entry. The add is buffered until Flush.
func (s *State) Add(topic, user string, conn uint64, meta []byte) *Entry {
	return s.AddInterned(s.internTopic(topic), user, conn, meta)
}

// AddInterned is Add for a topic string that is already shared, such as the
// Topic of an entry the state holds: it skips the lookup that interns it, a
// string hash per add. Interning only saves memory, so any string is
// correct; one that is not shared is merely not deduplicated.
func (s *State) AddInterned(topic, user string, conn uint64, meta []byte) *Entry {
	p := s.local
	p.seq++
	e := &Entry{Ref: p.seq, Topic: topic, User: user, Conn: conn, Meta: meta, owner: &p.owner}
	p.entries.Put(e.Ref, e)
	s.buf = append(s.buf, Op{Ref: e.Ref, Entry: e, seq: p.seq})
	return e
}

// Remove removes the local entry with the given ref and returns it, or nil
// if there is none. The remove is buffered until Flush.
func (s *State) Remove(ref Seq) *Entry {
	p := s.local
	e := p.entries.Delete(ref)
	if e == nil {
		return nil
	}
	p.seq++
	s.buf = append(s.buf, Op{Ref: ref, seq: p.seq, removed: e})
	return e
}

// Buffered returns the number of local operations waiting for Flush.
func (s *State) Buffered() int { return len(s.buf) }

// Flush cuts the buffered local operations into deltas of at most maxOps
// operations each (all of them in one delta if maxOps <= 0), records them
// in the local log and returns them for sending to every peer.
func (s *State) Flush(maxOps int) []*Delta {
	if len(s.buf) == 0 {
		return nil
	}
	if maxOps <= 0 {
		maxOps = len(s.buf)
	}
	var out []*Delta
	for i := 0; i < len(s.buf); i += maxOps {
		j := min(i+maxOps, len(s.buf))
		ops := make([]Op, j-i)
		copy(ops, s.buf[i:j])
		for k := range ops {
			ops[k].removed = nil
		}
		d := &Delta{Owner: s.self, From: s.bufFrom, To: ops[len(ops)-1].seq, Ops: ops}
		s.bufFrom = d.To
		s.local.log.append(d)
		out = append(out, d)
	}
	clear(s.buf)
	s.buf = s.buf[:0]
	return out
}

// Seq returns the sequence this state holds for owner: 0 when it holds
// nothing of that incarnation.
func (s *State) Seq(owner Replica) Seq {
	p := s.parts[owner.Name]
	if p == nil || p.owner.Epoch != owner.Epoch {
		return 0
	}
	if p == s.local {
		return s.bufFrom // only what has been flushed is visible to peers
	}
	return p.seq
}

// IsDead reports whether owner's incarnation has been dropped. Only that exact epoch is dead:
// epochs carry no order (a node restarted after its clock stepped back has a lower one), so a
// newer or older epoch of the same name is not implied dead.
func (s *State) IsDead(owner Replica) bool {
	for _, e := range s.dead[owner.Name] {
		if e == owner.Epoch {
			return true
		}
	}
	return false
}

// partitionFor finds or creates the partition for a remote owner. It returns nil when input
// about owner must be ignored: owner is this replica, a dropped incarnation, or not the
// incarnation held for its name. Data never supersedes an incarnation: only the membership
// layer does, by dropping the old one (Drop) before showing the new one.
func (s *State) partitionFor(owner Replica) *partition {
	if owner.Name == s.self.Name || s.IsDead(owner) {
		return nil
	}
	p := s.parts[owner.Name]
	if p != nil && p.owner.Epoch != owner.Epoch {
		return nil
	}
	if p == nil {
		// A remote partition stays hidden until the membership layer
		// says its owner is up (Show): counts cover replicas seen as up.
		p = newPartition(owner, &s.opts, true)
		s.parts[owner.Name] = p
		s.byName = nil
	}
	return p
}

// maxDeadEpochs bounds the dead epochs remembered per name.
const maxDeadEpochs = 8

func (s *State) markDead(r Replica) {
	if s.IsDead(r) {
		return
	}
	es := append(s.dead[r.Name], r.Epoch)
	if len(es) > maxDeadEpochs {
		es = es[len(es)-maxDeadEpochs:]
	}
	s.dead[r.Name] = es
}

// drop removes a partition and remembers its incarnation as dead.
func (s *State) drop(p *partition) Change {
	ch := Change{Leaves: p.visible()}
	delete(s.parts, p.owner.Name)
	s.byName = nil
	delete(s.gathering, p.owner.Name)
	s.markDead(p.owner)
	return ch
}

// PartitionInfo describes one partition held by a State.
type PartitionInfo struct {
	Owner   Replica
	Seq     Seq
	Entries int
	Hidden  bool
}

// Partitions describes every partition held, sorted by owner name.
func (s *State) Partitions() []PartitionInfo {
	out := make([]PartitionInfo, 0, len(s.parts))
	for _, p := range s.parts {
		out = append(out, PartitionInfo{Owner: p.owner, Seq: s.Seq(p.owner), Entries: p.entries.Len(), Hidden: p.hidden})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner.Name < out[j].Owner.Name })
	return out
}

// Entries calls fn for every visible entry until fn returns false. Order is
// unspecified. It is meant for tests and full rebuilds, not hot paths.
func (s *State) Entries(fn func(*Entry) bool) {
	for _, p := range s.parts {
		if p.hidden {
			continue
		}
		for e := range p.entries.All() {
			if !fn(e) {
				return
			}
		}
	}
}
