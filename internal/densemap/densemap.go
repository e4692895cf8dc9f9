// Package densemap is a map from uint64 keys that are minted in increasing
// order (a replica's refs, a node's connection ids) to values. Live keys of
// such a sequence cluster, so the map keeps values in chunks of ChunkLen
// consecutive keys, found through a Go map by key/ChunkLen, and remembers the
// chunk it last stored into. Most stores (a burst, a delta of consecutive
// ops) then cost no hashing at all, the Go map is ChunkLen times smaller than
// a map of values, and it grows that much more rarely.
//
// A chunk behind the newest one that empties out to a single value (a long-lived value among
// departed neighbours) is dropped, and its value kept in a second Go map, by chunk key.
//
// Memory, for pointer values (BenchmarkMemoryPerLive): a full chunk is about 9.5 bytes per value
// (a Go map of pointers: 19-37 bytes with its growth slack). A value alone in its chunk costs its
// slot in the second map, 24 bytes and the map's slack, instead of a 128-byte chunk and its slot.
// A chunk that keeps two values costs about 75 bytes each, three about 50. Under churn with
// exponential lifetimes a live key keeps about H(16)/16 = 0.21 chunks alive: under 30 bytes,
// less than a Go map (which never shrinks).
//
// Spread-out keys cost up to a chunk per value until they are deleted from. It is not safe for
// concurrent use.
package densemap

import "iter"

// ChunkLen is the number of consecutive keys in one chunk.
const ChunkLen = 1 << chunkBits

const chunkBits = 4

// Map maps keys to values of type V; the zero V means "no value", so a zero
// V cannot be stored. The zero Map is not usable; call New.
type Map[V comparable] struct {
	// A chunk key's values are in chunks, or (one value) in lone, never in both; no chunk is
	// empty.
	chunks  map[uint64]*[ChunkLen]V // by key >> chunkBits
	lone    map[uint64]loneValue[V] // by key >> chunkBits; nil until a value is left alone
	n       int
	last    *[ChunkLen]V // the chunk of the latest Put, or nil
	lastKey uint64
	top     uint64 // the highest chunk key stored into: the chunk that keys are being minted in
}

// loneValue is the only value of a chunk key: v, of the key at offset off in the chunk.
type loneValue[V comparable] struct {
	v   V
	off uint8
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

// loneOf returns the lone value of chunk key ck (the zero V if it has none). It hashes only
// while some value is alone, and never for the chunk being minted into or a newer one (a new
// key's), which have none.
func (m *Map[V]) loneOf(ck uint64) loneValue[V] {
	if len(m.lone) == 0 || ck >= m.top {
		return loneValue[V]{}
	}
	return m.lone[ck]
}

// Get returns the value of key, or the zero V.
func (m *Map[V]) Get(key uint64) V {
	ck, off := key>>chunkBits, uint8(key&(ChunkLen-1))
	if c := m.chunk(ck); c != nil {
		return c[off]
	}
	var zero V
	if l := m.loneOf(ck); l.off == off {
		return l.v // zero if ck has no lone value
	}
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
	ck, off := key>>chunkBits, uint8(key&(ChunkLen-1))
	c := m.chunk(ck)
	if c == nil {
		l := m.loneOf(ck)
		if l.v != zero && l.off == off {
			m.lone[ck] = loneValue[V]{v: v, off: off} // replaces the lone value
			return
		}
		c = new([ChunkLen]V)
		if l.v != zero {
			c[l.off] = l.v // a lone value gets a neighbour: back into a chunk
			delete(m.lone, ck)
		}
		m.chunks[ck] = c
	}
	m.last, m.lastKey = c, ck
	m.top = max(m.top, ck)
	if c[off] == zero {
		m.n++
	}
	c[off] = v
}

// Delete removes the value of key and returns it, or the zero V when there
// is none.
func (m *Map[V]) Delete(key uint64) V {
	var zero V
	ck, off := key>>chunkBits, uint8(key&(ChunkLen-1))
	c := m.chunk(ck)
	if c == nil {
		l := m.loneOf(ck)
		if l.v == zero || l.off != off {
			return zero
		}
		delete(m.lone, ck)
		m.n--
		return l.v
	}
	v := c[off]
	if v == zero {
		return zero
	}
	c[off] = zero
	m.n--
	left, at := 0, 0
	for i := ChunkLen - 1; i >= 0; i-- { // from the newest: keys often go in the order minted
		if c[i] != zero {
			if left++; left > 1 {
				return v
			}
			at = i
		}
	}
	if left > 0 && ck == m.top {
		return v // keys are still being minted into this chunk
	}
	delete(m.chunks, ck)
	if m.last == c {
		m.last = nil
	}
	if left > 0 {
		if m.lone == nil {
			m.lone = make(map[uint64]loneValue[V])
		}
		m.lone[ck] = loneValue[V]{v: c[at], off: uint8(at)}
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
		for _, l := range m.lone {
			if !yield(l.v) {
				return
			}
		}
	}
}
