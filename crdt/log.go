package crdt

// deltaLog keeps the most recent deltas of one partition, contiguous and in
// order, bounded by a number of ops and of bytes. It answers "owner since s"
// without a snapshot when s is recent enough.
type deltaLog struct {
	deltas   []*Delta
	sizes    []int
	ops      int
	bytes    int
	maxOps   int
	maxBytes int
}

func (l *deltaLog) reset() {
	clear(l.deltas)
	l.deltas = l.deltas[:0]
	l.sizes = l.sizes[:0]
	l.ops, l.bytes = 0, 0
}

// append adds d (which must follow the log's last delta) and trims the
// oldest deltas while the log is over either bound.
func (l *deltaLog) append(d *Delta) {
	size := opsSize(d.Ops)
	l.deltas = append(l.deltas, d)
	l.sizes = append(l.sizes, size)
	l.ops += len(d.Ops)
	l.bytes += size
	drop := 0
	for drop < len(l.deltas) && (l.ops > l.maxOps || l.bytes > l.maxBytes) {
		l.ops -= len(l.deltas[drop].Ops)
		l.bytes -= l.sizes[drop]
		l.deltas[drop] = nil
		drop++
	}
	if drop > 0 {
		l.deltas = append(l.deltas[:0], l.deltas[drop:]...)
		l.sizes = append(l.sizes[:0], l.sizes[drop:]...)
	}
}

// since returns the deltas needed to bring a replica at seq s up to date,
// and whether the log reaches back that far.
func (l *deltaLog) since(s Seq) ([]*Delta, bool) {
	if len(l.deltas) == 0 || l.deltas[0].From > s {
		return nil, false
	}
	i := 0
	for i < len(l.deltas) && l.deltas[i].To <= s {
		i++
	}
	return l.deltas[i:], true
}
