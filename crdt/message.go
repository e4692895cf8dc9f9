package crdt

// Message is one unit of replication traffic between replicas: a *Delta, a
// *Snapshot, a *Digest, a *Request or a *Goodbye. Marshal and Unmarshal carry
// it on the wire.
type Message interface {
	kind() kind
}

type kind uint8

const (
	kindDelta kind = iota + 1
	kindSnapshot
	kindDigest
	kindRequest
	kindGoodbye
)

// Op is one operation in an owner's chain. An add carries the new Entry and
// its Ref; a remove carries only the Ref of the entry it removes, so a
// remove costs a few bytes on the wire.
type Op struct {
	// Ref is the added entry's ref (add) or the removed entry's ref (remove).
	Ref Seq
	// Entry is the added entry; nil for a remove.
	Entry *Entry

	seq     Seq    // the op's own position in the chain; local bookkeeping only
	removed *Entry // the entry a buffered local remove took out; local only
}

// IsRemove reports whether the op removes an entry.
func (o Op) IsRemove() bool { return o.Entry == nil }

// Delta is a contiguous slice of one owner's chain: the operations with
// sequence numbers in (From, To]. Ops are in chain order.
type Delta struct {
	Owner    Replica
	From, To Seq
	Ops      []Op
}

// Snapshot is the whole of one owner's partition as of sequence Seq, or one
// part of it: a large partition travels as Parts messages (Part 0 to
// Parts-1) that the receiver gathers and applies together, so that no
// message outgrows the transport's limit. Parts 0 or 1 means whole.
type Snapshot struct {
	Owner   Replica
	Seq     Seq
	Entries []*Entry
	Part    uint32
	Parts   uint32
}

// MaxSnapshotParts bounds the parts of one snapshot.
const MaxSnapshotParts = 1 << 12

// DigestItem says that the sender holds Owner's chain up to Seq.
type DigestItem struct {
	Owner Replica
	Seq   Seq
}

// Digest lists the sender's sequence for every owner it holds. Its size
// grows with the number of replicas, never with the number of presences.
// Each item stands on its own (a receiver asks for what an item shows it
// lacks; an owner left out says nothing), so a transport may send one
// digest as several of consecutive items (package gossip does, to fit them
// into datagrams).
type Digest struct {
	Items []DigestItem
}

// Request asks the receiver for Owner's operations after Since. Any replica
// holding Owner's chain may answer, with deltas from its log or a snapshot.
type Request struct {
	Owner Replica
	Since Seq
}

// Goodbye says that Replica is leaving for good: its presences can be
// dropped at once.
type Goodbye struct {
	Replica Replica
}

func (*Delta) kind() kind    { return kindDelta }
func (*Snapshot) kind() kind { return kindSnapshot }
func (*Digest) kind() kind   { return kindDigest }
func (*Request) kind() kind  { return kindRequest }
func (*Goodbye) kind() kind  { return kindGoodbye }

// opsSize is the approximate byte cost of ops, for log bounds.
func opsSize(ops []Op) int {
	n := 0
	for _, o := range ops {
		n += 8
		if o.Entry != nil {
			n += o.Entry.size()
		}
	}
	return n
}
