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
			for _, c := range m.chunks {
				require.NotEqual(t, [ChunkLen]*val{}, *c, "an empty chunk is kept")
			}
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
