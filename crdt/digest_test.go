package crdt

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// Digest keeps its owners sorted between calls and re-sorts only when a partition comes or
// goes; whatever the order of partitions shown, dropped, revived under another epoch and local
// changes flushed or not, it equals the digest built afresh from Partitions (every owner once,
// sorted by name, with the sequence peers may see).
func TestDigestFollowsPartitions(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := NewState(Replica{Name: "self", Epoch: 1}, Options{})
		for i, k := 0, rapid.IntRange(1, 60).Draw(t, "steps"); i < k; i++ {
			r := Replica{Name: fmt.Sprintf("n%d", rapid.IntRange(0, 9).Draw(t, "name")), Epoch: uint64(rapid.IntRange(1, 3).Draw(t, "epoch"))}
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				s.Show(r)
			case 1:
				s.Drop(r)
			case 2:
				s.Add("t", "", uint64(i), nil)
			case 3:
				s.Flush(0)
			}
			got := s.Digest().Items
			want := []DigestItem{}
			for _, p := range s.Partitions() {
				want = append(want, DigestItem{Owner: p.Owner, Seq: p.Seq})
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: digest %v, partitions %v", i, got, want)
			}
		}
	})
}
