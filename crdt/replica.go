package crdt

import "strconv"

// Seq is a position in one owner's chain of operations. The first operation
// of an owner has Seq 1; 0 means "nothing yet".
type Seq = uint64

// Replica identifies one incarnation of a node: its name and the epoch it
// booted with. A restart is a new replica with the same name and a higher
// epoch.
type Replica struct {
	Name  string
	Epoch uint64
}

// IsZero reports whether r is the zero Replica.
func (r Replica) IsZero() bool { return r.Name == "" && r.Epoch == 0 }

// String returns "name/epoch".
func (r Replica) String() string { return r.Name + "/" + strconv.FormatUint(r.Epoch, 10) }
