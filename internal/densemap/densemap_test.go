package densemap

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

type val struct{ key uint64 }

// TestMatchesMap drives a Map through random puts (new and replacing) and
// deletes, mostly of increasing keys (as they are minted) and sometimes of
// any key in range, and checks every answer, the length and the iteration
// against a Go map. Small ranges make chunks empty out and fill again, the
// cached last chunk included.
func TestMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := New[*val](rapid.IntRange(0, 40).Draw(t, "hint"))
		model := map[uint64]*val{}
		maxKey := uint64(rapid.IntRange(1, 100).Draw(t, "maxKey"))
		next := uint64(1)
		for range rapid.IntRange(0, 300).Draw(t, "steps") {
			key := uint64(rapid.IntRange(0, int(maxKey)).Draw(t, "key"))
			if rapid.Bool().Draw(t, "sequential") {
				key = next
				next = next%maxKey + 1
			}
			if rapid.IntRange(0, 2).Draw(t, "op") > 0 {
				v := &val{key}
				m.Put(key, v)
				model[key] = v
			} else {
				require.Equal(t, model[key], m.Delete(key), "Delete(%d)", key)
				delete(model, key)
			}
			require.Equal(t, len(model), m.Len())
			for k := uint64(0); k <= maxKey+1; k++ {
				require.Equal(t, model[k], m.Get(k), "Get(%d)", k)
			}
			seen := map[uint64]bool{}
			for v := range m.All() {
				require.Same(t, model[v.key], v)
				require.False(t, seen[v.key])
				seen[v.key] = true
			}
			require.Len(t, seen, len(model))
			requireInvariants(t, &m)
		}
	})
}

// TestPutZeroDeletes: the zero value means "none", so storing it removes.
func TestPutZeroDeletes(t *testing.T) {
	m := New[*val](0)
	m.Put(3, &val{3})
	m.Put(3, nil)
	require.Equal(t, 0, m.Len())
	require.Nil(t, m.Get(3))
	require.Empty(t, m.chunks)
}

// requireInvariants: a chunk key's values are in a chunk or alone in lone, never both; no
// chunk is empty, and a lone value is of a key of its chunk.
func requireInvariants(t require.TestingT, m *Map[*val]) {
	for _, c := range m.chunks {
		require.NotEqual(t, [ChunkLen]*val{}, *c, "an empty chunk is kept")
	}
	for ck, l := range m.lone {
		require.NotContains(t, m.chunks, ck, "chunk %d has a chunk and a lone value", ck)
		require.NotNil(t, l.v, "an empty lone value is kept")
		require.Less(t, l.off, uint8(ChunkLen))
		require.Equal(t, ck<<chunkBits|uint64(l.off), l.v.key)
	}
}

// TestKeptValuesAmongDepartedNeighboursKeepNoChunk: keys minted in order, one in 16 kept and
// each other deleted once the next is minted (the worst case of chunks: one value each). Only
// the chunk being minted into keeps its chunk; every other kept value is alone in its slot, and
// stays readable, replaceable and deletable there. A second value in that chunk brings the chunk
// back.
func TestKeptValuesAmongDepartedNeighboursKeepNoChunk(t *testing.T) {
	const n = 1600
	m := New[*val](0)
	for key := uint64(1); key <= n; key++ {
		m.Put(key, &val{key})
		if key > 1 && (key-1)%16 != 0 {
			m.Delete(key - 1)
		}
	}
	require.Equal(t, n/16, m.Len()) // 16, 32, ..., n
	require.Len(t, m.chunks, 1, "only the chunk being minted into keeps its chunk")
	require.Contains(t, m.chunks, uint64(n/16))
	require.Len(t, m.lone, n/16-1, "chunks 1 to n/16-1 keep a lone value; chunk 0 emptied out")
	requireInvariants(t, &m)
	for key := uint64(1); key <= n+1; key++ {
		if key%16 == 0 {
			require.Equal(t, key, m.Get(key).key)
		} else {
			require.Nil(t, m.Get(key))
			require.Nil(t, m.Delete(key))
		}
	}

	// Chunk 1 (keys 16-31) keeps key 16 alone: replace it, then add a neighbour.
	v := &val{16}
	m.Put(16, v)
	require.Same(t, v, m.Get(16))
	require.Contains(t, m.lone, uint64(1), "a replaced lone value stays alone")
	m.Put(18, &val{18})
	require.NotContains(t, m.lone, uint64(1))
	require.Contains(t, m.chunks, uint64(1), "a second value brings the chunk back")
	require.Same(t, v, m.Get(16))
	require.Equal(t, uint64(18), m.Get(18).key)
	require.Equal(t, n/16+1, m.Len())
	requireInvariants(t, &m)

	// Deleting every value empties both maps.
	for key := uint64(1); key <= n; key++ {
		m.Delete(key)
	}
	require.Zero(t, m.Len())
	require.Empty(t, m.chunks)
	require.Empty(t, m.lone)
}
