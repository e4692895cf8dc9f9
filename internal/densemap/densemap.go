// Package densemap is a map from uint64 keys that are minted in increasing
// order (a replica's refs, a node's connection ids) to values. Live keys of
// such a sequence cluster, so the map keeps values in chunks of ChunkLen
// consecutive keys, found through a Go map by key/ChunkLen, and remembers the
// chunk it last stored into. Most stores (a burst, a delta of consecutive
// ops) then cost no hashing at all, the Go map is ChunkLen times smaller than
// a map of values, and it grows that much more rarely.
//
// A chunk behind the newest one that empties out to thinLen values or fewer (a long-lived value
// among departed neighbours) is thinned: its values move to a thin chunk that holds only them,
// found through a second Go map.
//
// Memory, for pointer values (BenchmarkMemoryPerLive): a full chunk is about 9.5 bytes per value
// (a Go map of pointers: 19-37 bytes with its growth slack). A chunk costs about 150 bytes with
// its map slot, so a chunk that keeps only a few values would cost up to 150 bytes per value; a
// thin chunk costs about 50-70 bytes (32 bytes and its map slot), so the worst case, one value
// per chunk, is that per value, and a kept chunk holds at least thinLen+1 values (under 40 bytes
// each). Under churn with exponential lifetimes a live key keeps about H(16)/16 = 0.21 chunks
// alive: about 34 bytes, less than a Go map (which never shrinks).
//
// Spread-out keys cost up to a chunk per value until they are deleted from. It is not safe for
// concurrent use.
package densemap

import "iter"

// ChunkLen is the number of consecutive keys in one chunk.
const ChunkLen = 1 << chunkBits

const chunkBits = 4

// thinLen is the most values a thin chunk holds. A chunk (128 bytes of pointers and its map
// slot) left with thinLen values or fewer costs more per value than a thin chunk does.
const thinLen = 3

// Map maps keys to values of type V; the zero V means "no value", so a zero
// V cannot be stored. The zero Map is not usable; call New.
type Map[V comparable] struct {
	// The values of a chunk key are in chunks or in thin, never in both; neither holds an
	// empty chunk.
	chunks  map[uint64]*[ChunkLen]V  // by key >> chunkBits
	thin    map[uint64]*thinChunk[V] // by key >> chunkBits; nil until a chunk is thinned
	n       int
	last    *[ChunkLen]V // the chunk of the latest Put, or nil
	lastKey uint64
	top     uint64 // the highest chunk key stored into: the chunk that keys are being minted in
}

// thinChunk holds the few values left in a chunk: v[j], if not zero, is the value of the key
// at offset idx[j] in the chunk.
type thinChunk[V comparable] struct {
	idx [thinLen]uint8
	v   [thinLen]V
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

// thinChunk returns the thin chunk of ck, or nil. It hashes only while some chunk is thin.
func (m *Map[V]) thinChunk(ck uint64) *thinChunk[V] {
	if len(m.thin) == 0 {
		return nil
	}
	return m.thin[ck]
}

// find returns the slot of offset i in t, or -1.
func (t *thinChunk[V]) find(i uint8) int {
	var zero V
	for j, v := range t.v {
		if v != zero && t.idx[j] == i {
			return j
		}
	}
	return -1
}

// Get returns the value of key, or the zero V.
func (m *Map[V]) Get(key uint64) V {
	ck := key >> chunkBits
	if c := m.chunk(ck); c != nil {
		return c[key&(ChunkLen-1)]
	}
	if t := m.thinChunk(ck); t != nil {
		if j := t.find(uint8(key & (ChunkLen - 1))); j >= 0 {
			return t.v[j]
		}
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
		if t := m.thinChunk(ck); t != nil {
			if c = m.putThin(ck, t, uint8(key&(ChunkLen-1)), v); c == nil {
				return
			}
		} else {
			c = new([ChunkLen]V)
			m.chunks[ck] = c
		}
	}
	m.last, m.lastKey = c, ck
	m.top = max(m.top, ck)
	if c[key&(ChunkLen-1)] == zero {
		m.n++
	}
	c[key&(ChunkLen-1)] = v
}

// putThin stores v at offset i of ck's thin chunk t, if t has i or a free slot, and returns
// nil. Otherwise (t is full) it turns t back into a chunk and returns it, for the caller to
// store into.
func (m *Map[V]) putThin(ck uint64, t *thinChunk[V], i uint8, v V) *[ChunkLen]V {
	if j := t.find(i); j >= 0 {
		t.v[j] = v
		return nil
	}
	var zero V
	for j := range t.v {
		if t.v[j] == zero {
			t.idx[j], t.v[j] = i, v
			m.n++
			return nil
		}
	}
	c := new([ChunkLen]V)
	for j, x := range t.v {
		c[t.idx[j]] = x
	}
	delete(m.thin, ck)
	m.chunks[ck] = c
	return c
}

// Delete removes the value of key and returns it, or the zero V when there
// is none.
func (m *Map[V]) Delete(key uint64) V {
	var zero V
	ck := key >> chunkBits
	i := key & (ChunkLen - 1)
	c := m.chunk(ck)
	if c == nil {
		return m.deleteThin(ck, uint8(i))
	}
	v := c[i]
	if v == zero {
		return zero
	}
	c[i] = zero
	m.n--
	left := 0
	for _, x := range c {
		if x != zero {
			if left++; left > thinLen {
				return v
			}
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
		m.thinOut(ck, c)
	}
	return v
}

// deleteThin is Delete of offset i of chunk key ck, which has no chunk.
func (m *Map[V]) deleteThin(ck uint64, i uint8) V {
	var zero V
	t := m.thinChunk(ck)
	if t == nil {
		return zero
	}
	j := t.find(i)
	if j < 0 {
		return zero
	}
	v := t.v[j]
	t.v[j] = zero
	m.n--
	if t.v == ([thinLen]V{}) {
		delete(m.thin, ck)
	}
	return v
}

// thinOut stores the values of c, at most thinLen, in a thin chunk for ck.
func (m *Map[V]) thinOut(ck uint64, c *[ChunkLen]V) {
	var zero V
	t := new(thinChunk[V])
	j := 0
	for i, x := range c {
		if x != zero {
			t.idx[j], t.v[j] = uint8(i), x
			j++
		}
	}
	if m.thin == nil {
		m.thin = make(map[uint64]*thinChunk[V])
	}
	m.thin[ck] = t
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
		for _, t := range m.thin {
			for _, v := range t.v {
				if v != zero && !yield(v) {
					return
				}
			}
		}
	}
}
