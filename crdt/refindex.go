package crdt

import "iter"

// refIndex holds one partition's entries by ref. An owner mints refs in
// increasing order, so live refs cluster: the index keeps them in chunks of
// refChunkLen consecutive refs, found through a map by ref/refChunkLen, and
// remembers the chunk it last added to. Most adds (a burst, a delta of
// consecutive ops) then cost no hashing at all, the map is refChunkLen times
// smaller than a map of entries, and it grows that much more rarely.
//
// Memory: a full chunk is 8 bytes per entry (a map of entries: 19-37 bytes
// with its growth slack); a chunk that holds a single long-lived entry
// among departed neighbours costs 128 bytes. Under churn with exponential
// session lengths a live entry keeps about H(16)/16 = 0.21 chunks alive:
// about 27 bytes, the same as the map.
type refIndex struct {
	chunks  map[Seq]*refChunk // by ref >> refChunkBits; no chunk is empty
	n       int
	last    *refChunk // the chunk of the latest add, or nil
	lastKey Seq
}

const (
	refChunkBits = 4
	refChunkLen  = 1 << refChunkBits
)

// refChunk holds the entries of refs key<<refChunkBits + i, nil where none.
// At 16 pointers it is exactly a 128-byte allocation.
type refChunk [refChunkLen]*Entry

func newRefIndex(n int) refIndex {
	return refIndex{chunks: make(map[Seq]*refChunk, (n+refChunkLen-1)/refChunkLen)}
}

func (x *refIndex) len() int { return x.n }

func (x *refIndex) chunk(key Seq) *refChunk {
	if x.last != nil && x.lastKey == key {
		return x.last
	}
	return x.chunks[key]
}

// get returns the entry of ref, or nil.
func (x *refIndex) get(ref Seq) *Entry {
	if c := x.chunk(ref >> refChunkBits); c != nil {
		return c[ref&(refChunkLen-1)]
	}
	return nil
}

// put stores e under ref, which must hold no entry (the caller checks).
func (x *refIndex) put(ref Seq, e *Entry) {
	key := ref >> refChunkBits
	c := x.chunk(key)
	if c == nil {
		c = new(refChunk)
		x.chunks[key] = c
	}
	x.last, x.lastKey = c, key
	c[ref&(refChunkLen-1)] = e
	x.n++
}

// del removes the entry of ref and returns it, or nil when there is none.
func (x *refIndex) del(ref Seq) *Entry {
	key := ref >> refChunkBits
	c := x.chunk(key)
	if c == nil {
		return nil
	}
	i := ref & (refChunkLen - 1)
	e := c[i]
	if e == nil {
		return nil
	}
	c[i] = nil
	x.n--
	if *c == (refChunk{}) {
		delete(x.chunks, key)
		if x.last == c {
			x.last = nil
		}
	}
	return e
}

// all returns every entry, in no particular order. The index must not change
// while the sequence is being iterated.
func (x *refIndex) all() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, c := range x.chunks {
			for _, e := range c {
				if e != nil && !yield(e) {
					return
				}
			}
		}
	}
}
