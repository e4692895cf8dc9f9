// Package densemap is a map from uint64 keys that are minted in increasing
// order (a replica's refs, a node's connection ids) to values. Live keys of
// such a sequence cluster, so the map keeps values in chunks of ChunkLen
// consecutive keys, found through a Go map by key/ChunkLen, and remembers the
// chunk it last stored into. Most stores (a burst, a delta of consecutive
// ops) then cost no hashing at all, the Go map is ChunkLen times smaller than
// a map of values, and it grows that much more rarely.
//
// Memory, for pointer values: a full chunk is 8 bytes per value (a Go map of
// pointers: 19-37 bytes with its growth slack); a chunk that holds a single
// long-lived value among departed neighbours costs 128 bytes. Under churn
// with exponential lifetimes a live key keeps about H(16)/16 = 0.21 chunks
// alive: about 27 bytes, the same as a Go map.
//
// Spread-out keys cost up to a chunk per value: the memory is bounded by
// 128 bytes (for pointer values) times the number of values, whatever the
// keys. It is not safe for concurrent use.
package densemap

import "iter"

// ChunkLen is the number of consecutive keys in one chunk.
const ChunkLen = 1 << chunkBits

const chunkBits = 4

// Map maps keys to values of type V; the zero V means "no value", so a zero
// V cannot be stored. The zero Map is not usable; call New.
type Map[V comparable] struct {
	chunks  map[uint64]*[ChunkLen]V // by key >> chunkBits; no chunk is empty
	n       int
	last    *[ChunkLen]V // the chunk of the latest Put, or nil
	lastKey uint64
}

// New returns an empty map with room for about n values without growing.
func New[V comparable](n int) Map[V] {
	return Map[V]{chunks: make(map[uint64]*[ChunkLen]V, (n+ChunkLen-1)/ChunkLen)}
}

// Len returns the number of values stored.
func (m *Map[V]) Len() int { return m.n }

func (m *Map[V]) chunk(ck uint64) *[ChunkLen]V {
	if m.last != nil && m.lastKey == ck {
		return m.last
	}
	return m.chunks[ck]
}

// Get returns the value of key, or the zero V.
func (m *Map[V]) Get(key uint64) V {
	if c := m.chunk(key >> chunkBits); c != nil {
		return c[key&(ChunkLen-1)]
	}
	var zero V
	return zero
}

// Put stores v under key, replacing any value. Putting the zero V is
// Delete.
func (m *Map[V]) Put(key uint64, v V) {
	var zero V
	if v == zero {
		m.Delete(key)
		return
	}
	ck := key >> chunkBits
	c := m.chunk(ck)
	if c == nil {
		c = new([ChunkLen]V)
		m.chunks[ck] = c
	}
	m.last, m.lastKey = c, ck
	if c[key&(ChunkLen-1)] == zero {
		m.n++
	}
	c[key&(ChunkLen-1)] = v
}

// Delete removes the value of key and returns it, or the zero V when there
// is none.
func (m *Map[V]) Delete(key uint64) V {
	var zero V
	ck := key >> chunkBits
	c := m.chunk(ck)
	if c == nil {
		return zero
	}
	i := key & (ChunkLen - 1)
	v := c[i]
	if v == zero {
		return zero
	}
	c[i] = zero
	m.n--
	if *c == ([ChunkLen]V{}) {
		delete(m.chunks, ck)
		if m.last == c {
			m.last = nil
		}
	}
	return v
}

// All returns every value, in no particular order. The map must not change
// while the sequence is being iterated.
func (m *Map[V]) All() iter.Seq[V] {
	return func(yield func(V) bool) {
		var zero V
		for _, c := range m.chunks {
			for _, v := range c {
				if v != zero && !yield(v) {
					return
				}
			}
		}
	}
}
