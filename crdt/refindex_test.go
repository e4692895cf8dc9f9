package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestRefIndexMatchesMap drives a refIndex through random puts and deletes,
// mostly of increasing refs (as an owner mints them) and sometimes of any ref
// in range, and checks every answer, the length and the iteration against a
// map. Small ranges make chunks empty out and fill again, the cached last
// chunk included.
func TestRefIndexMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := newRefIndex(rapid.IntRange(0, 40).Draw(t, "hint"))
		model := map[Seq]*Entry{}
		maxRef := Seq(rapid.IntRange(1, 100).Draw(t, "maxRef"))
		next := Seq(1)
		for range rapid.IntRange(0, 300).Draw(t, "steps") {
			ref := Seq(rapid.IntRange(1, int(maxRef)).Draw(t, "ref"))
			if rapid.Bool().Draw(t, "sequential") {
				ref = next
				next = next%maxRef + 1
			}
			switch {
			case rapid.IntRange(0, 2).Draw(t, "op") > 0 && model[ref] == nil:
				e := &Entry{Ref: ref}
				x.put(ref, e)
				model[ref] = e
			default:
				require.Equal(t, model[ref], x.del(ref), "del(%d)", ref)
				delete(model, ref)
			}
			require.Equal(t, len(model), x.len())
			for r := Seq(0); r <= maxRef+1; r++ {
				require.Equal(t, model[r], x.get(r), "get(%d)", r)
			}
			seen := map[Seq]bool{}
			for e := range x.all() {
				require.Same(t, model[e.Ref], e)
				require.False(t, seen[e.Ref])
				seen[e.Ref] = true
			}
			require.Len(t, seen, len(model))
			for _, c := range x.chunks {
				require.NotEqual(t, refChunk{}, *c, "an empty chunk is kept")
			}
		}
	})
}
