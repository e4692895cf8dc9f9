package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestEntrySetMatchesMap drives two sets through random adds and removes of a
// pool of entries (each entry only ever offered to its own set, as the
// tracker does by topic) and checks every answer against a map.
func TestEntrySetMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pool := make([]*Entry, rapid.IntRange(1, 200).Draw(t, "entries"))
		for i := range pool {
			pool[i] = &Entry{Ref: Seq(i + 1)}
		}
		var sets [2]EntrySet
		model := [2]map[*Entry]bool{{}, {}}
		steps := rapid.IntRange(0, 400).Draw(t, "steps")
		for range steps {
			i := rapid.IntRange(0, len(pool)-1).Draw(t, "entry")
			e, k := pool[i], i%2
			if rapid.Bool().Draw(t, "add") {
				require.Equal(t, !model[k][e], sets[k].Add(e), "Add")
				model[k][e] = true
			} else {
				require.Equal(t, model[k][e], sets[k].Remove(e), "Remove")
				delete(model[k], e)
			}
			for k := range sets {
				require.Equal(t, len(model[k]), sets[k].Len())
				seen := map[*Entry]bool{}
				for e := range sets[k].All() {
					require.True(t, model[k][e], "All yields an entry not in the set")
					require.False(t, seen[e], "All yields an entry twice")
					seen[e] = true
				}
				for j, e := range pool {
					require.Equal(t, j%2 == k && model[k][e], sets[k].Has(e), "Has")
				}
			}
		}
	})
}

// TestEntrySetAddInAnotherSetPanics: an entry is in one set at a time; a
// second set must not silently take it over (the first set's slot would then
// point at the wrong entry).
func TestEntrySetAddInAnotherSetPanics(t *testing.T) {
	var a, b EntrySet
	e := &Entry{Ref: 1}
	require.True(t, a.Add(e))
	require.Panics(t, func() { b.Add(e) })
	require.True(t, a.Remove(e))
	require.True(t, b.Add(e), "once removed, it can join another set")
	require.False(t, a.Has(e))
}

// TestEntrySetShrinks: a set that grew and then emptied most of the way
// gives its backing array back.
func TestEntrySetShrinks(t *testing.T) {
	var s EntrySet
	es := make([]*Entry, 1000)
	for i := range es {
		es[i] = &Entry{Ref: Seq(i + 1)}
		s.Add(es[i])
	}
	for _, e := range es[:990] {
		require.True(t, s.Remove(e))
	}
	require.Equal(t, 10, s.Len())
	require.Less(t, cap(s.es), 100)
	for _, e := range es[990:] {
		require.True(t, s.Has(e))
	}
}
