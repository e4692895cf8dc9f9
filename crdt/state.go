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
	self      Replica
	opts      Options
	local     *partition
	parts     map[string]*partition // by replica name: one incarnation per name
	dead      map[string]uint64     // name -> highest dropped epoch
	buf       []Op                  // local ops not yet cut into deltas
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
		dead:      make(map[string]uint64),
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
	p := s.local
	p.seq++
	e := &Entry{Ref: p.seq, Topic: s.internTopic(topic), User: user, Conn: conn, Meta: meta, owner: &p.owner}
	p.entries[e.Ref] = e
	s.buf = append(s.buf, Op{Ref: e.Ref, Entry: e, seq: p.seq})
	return e
}

// Remove removes the local entry with the given ref and returns it, or nil
// if there is none. The remove is buffered until Flush.
func (s *State) Remove(ref Seq) *Entry {
	p := s.local
	e, ok := p.entries[ref]
	if !ok {
		return nil
	}
	delete(p.entries, ref)
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

// IsDead reports whether owner's incarnation has been dropped (or is older
// than one that was).
func (s *State) IsDead(owner Replica) bool {
	e, ok := s.dead[owner.Name]
	return ok && owner.Epoch <= e
}

// partitionFor finds or creates the partition for a remote owner, applying
// the incarnation rules. It returns nil when input about owner must be
// ignored, and the change made by superseding an older incarnation.
func (s *State) partitionFor(owner Replica) (*partition, Change) {
	if owner.Name == s.self.Name || s.IsDead(owner) {
		return nil, Change{}
	}
	p := s.parts[owner.Name]
	var ch Change
	if p != nil {
		switch {
		case p.owner.Epoch > owner.Epoch:
			s.markDead(owner)
			return nil, Change{}
		case p.owner.Epoch < owner.Epoch:
			ch = s.drop(p)
			p = nil
		}
	}
	if p == nil {
		// A remote partition stays hidden until the membership layer
		// says its owner is up (Show): counts cover replicas seen as up.
		p = newPartition(owner, &s.opts, true)
		s.parts[owner.Name] = p
	}
	return p, ch
}

func (s *State) markDead(r Replica) {
	if e, ok := s.dead[r.Name]; !ok || r.Epoch > e {
		s.dead[r.Name] = r.Epoch
	}
}

// drop removes a partition and remembers its incarnation as dead.
func (s *State) drop(p *partition) Change {
	ch := Change{Leaves: p.visible()}
	delete(s.parts, p.owner.Name)
	delete(s.gathering, p.owner.Name)
	s.markDead(p.owner)
	return ch
}

func checkDelta(d *Delta) error {
	if d.To < d.From {
		return fmt.Errorf("%w: delta range (%d, %d]", ErrInvalid, d.From, d.To)
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
	p, ch := s.partitionFor(d.Owner)
	if p == nil {
		return ch, Ignored, nil
	}
	switch {
	case d.To <= p.seq:
		return ch, Stale, nil
	case d.From > p.seq:
		p.keepAside(d, s.opts.MaxPending)
		return ch, Gap, nil
	}
	ch.add(p.applyOps(d, s))
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
	p, ch := s.partitionFor(sn.Owner)
	if p == nil {
		return ch, Ignored, nil
	}
	if sn.Seq <= p.seq {
		return ch, Stale, nil
	}
	next := make(map[Seq]*Entry, len(sn.Entries))
	for _, e := range sn.Entries {
		if old, ok := p.entries[e.Ref]; ok {
			next[e.Ref] = old // same ref, same immutable entry
			continue
		}
		e.owner = &p.owner
		e.Topic = s.internTopic(e.Topic)
		next[e.Ref] = e
		if !p.hidden {
			ch.Joins = append(ch.Joins, e)
		}
	}
	if !p.hidden {
		for ref, e := range p.entries {
			if _, ok := next[ref]; !ok {
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
		case p.owner.Epoch > sn.Owner.Epoch:
			return Change{}, Ignored, nil
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
	case p == nil || p.owner.Epoch < it.Owner.Epoch:
		return 0, true
	case p.owner.Epoch > it.Owner.Epoch:
		return 0, false
	case p.seq < it.Seq:
		return p.seq, true
	}
	return 0, false
}

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
		out = append(out, PartitionInfo{Owner: p.owner, Seq: s.Seq(p.owner), Entries: len(p.entries), Hidden: p.hidden})
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
		for _, e := range p.entries {
			if !fn(e) {
				return
			}
		}
	}
}
