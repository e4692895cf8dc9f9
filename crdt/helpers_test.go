package crdt

import (
	"fmt"
	"sort"
)

// view is a comparable picture of the visible entries of a state:
// "owner|ref|topic|user" strings, sorted.
func view(s *State) []string {
	var out []string
	s.Entries(func(e *Entry) bool {
		out = append(out, fmt.Sprintf("%s|%d|%s|%s|%d|%x", e.Owner(), e.Ref, e.Topic, e.User, e.Conn, e.Meta))
		return true
	})
	sort.Strings(out)
	return out
}

// roundTrip sends m through the wire codec, as every message in production.
func roundTrip(t tester, from Replica, m Message) Message {
	t.Helper()
	b, err := Marshal(from, m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	f, out, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if f != from {
		t.Fatalf("from = %v, want %v", f, from)
	}
	return out
}

func apply(t tester, s *State, m Message) (Change, Status) {
	t.Helper()
	var (
		ch  Change
		st  Status
		err error
	)
	switch m := m.(type) {
	case *Delta:
		ch, st, err = s.ApplyDelta(m)
	case *Snapshot:
		ch, st, err = s.ApplySnapshot(m)
	default:
		t.Fatalf("cannot apply %T", m)
	}
	if err != nil {
		t.Fatalf("apply %T: %v", m, err)
	}
	return ch, st
}

// tester is what helpers need of *testing.T and *rapid.T.
type tester interface {
	Helper()
	Fatalf(format string, args ...any)
}

var (
	rA = Replica{Name: "a", Epoch: 1}
	rB = Replica{Name: "b", Epoch: 1}
	rC = Replica{Name: "c", Epoch: 1}
)
