package tracker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// Roll-ups: the counts of every topic with a prefix ("video:*" covers
// "video:1", "video:2", ...; "*" covers the whole node), kept incrementally
// while someone holds them. A roll-up is built by one scan of the topics
// when it is first asked for; afterwards every presence change costs O(1)
// per matching roll-up (a map update and a move of the topic between two
// adjacent buckets of the roll-up's ranking). A roll-up nobody holds any
// more lingers for Config.RollupLinger, so a page that reconnects or a
// dashboard that polls does not rebuild it each time.

// Errors of the roll-up API.
var (
	ErrNotRollup      = errors.New("tracker: not a roll-up topic")
	ErrTooManyRollups = errors.New("tracker: too many roll-ups")
)

// IsRollup reports whether topic names a roll-up: it ends in "*". Such a
// topic cannot be tracked.
func IsRollup(topic string) bool { return strings.HasSuffix(topic, "*") }

// anonKey identifies an anonymous connection cluster-wide.
type anonKey struct {
	node  string
	epoch uint64
	conn  uint64
}

func anonOf(e *crdt.Entry) anonKey {
	r := e.Owner()
	return anonKey{node: r.Name, epoch: r.Epoch, conn: e.Conn}
}

// rollup is the counts of one prefix and the ranking of its topics.
type rollup struct {
	prefix    string
	topic     string // prefix + "*", what subscribers are told changed
	holds     int
	idleSince time.Time // when holds last dropped to 0 (or the last query while 0)
	viewers   map[anonKey]int32
	users     map[string]int32
	conns     int
	rank      ranking
}

func (r *rollup) add(e *crdt.Entry) {
	r.conns++
	if e.User == "" {
		r.viewers[anonOf(e)]++
	} else {
		r.users[e.User]++
	}
}

func (r *rollup) remove(e *crdt.Entry) {
	r.conns--
	if e.User == "" {
		k := anonOf(e)
		if n := r.viewers[k] - 1; n <= 0 {
			delete(r.viewers, k)
		} else {
			r.viewers[k] = n
		}
	} else if n := r.users[e.User] - 1; n <= 0 {
		delete(r.users, e.User)
	} else {
		r.users[e.User] = n
	}
}

func (r *rollup) counts() Counts {
	return Counts{Viewers: len(r.viewers), Users: len(r.users), Connections: r.conns}
}

// score is what busiest-first ordering ranks a topic by.
func (ts *topicState) score() int { return ts.viewers + len(ts.users) }

// rollupJoin and rollupLeave feed one change of e's topic into the
// roll-ups that cover it. Called with t.mu held, after ts changed.
func (t *Tracker) rollupJoin(ts *topicState, e *crdt.Entry) {
	for _, it := range ts.ranks {
		it.r.add(e)
		it.r.rank.set(it, ts.score())
		t.touch(it.r.topic)
	}
}

func (t *Tracker) rollupLeave(ts *topicState, e *crdt.Entry) {
	for _, it := range ts.ranks {
		it.r.remove(e)
		if ts.conns == 0 {
			it.r.rank.remove(it)
		} else {
			it.r.rank.set(it, ts.score())
		}
		t.touch(it.r.topic)
	}
}

// rollupsOf returns the ranking items of a new topic, one per roll-up that
// covers it: one map lookup per distinct roll-up prefix length.
func (t *Tracker) rollupsOf(topic string, ts *topicState) []*rankItem {
	var out []*rankItem
	for _, n := range t.rollupLens {
		if n > len(topic) {
			break
		}
		if r := t.rollups[topic[:n]]; r != nil {
			out = append(out, &rankItem{r: r, topic: topic, ts: ts})
		}
	}
	return out
}

// rollupLocked returns the roll-up of prefix, building it with one scan of
// the topics if it does not exist. Called with t.mu held.
func (t *Tracker) rollupLocked(prefix string) (*rollup, error) {
	if r := t.rollups[prefix]; r != nil {
		return r, nil
	}
	if len(t.rollups) >= t.cfg.MaxRollups {
		t.sweepRollups(true)
		if len(t.rollups) >= t.cfg.MaxRollups {
			return nil, fmt.Errorf("%w: %d held", ErrTooManyRollups, len(t.rollups))
		}
	}
	if t.rollups == nil {
		t.rollups = make(map[string]*rollup)
	}
	r := &rollup{
		prefix: prefix, topic: prefix + "*", idleSince: t.now,
		viewers: make(map[anonKey]int32), users: make(map[string]int32),
	}
	t.rollups[prefix] = r
	if i, found := slices.BinarySearch(t.rollupLens, len(prefix)); !found {
		t.rollupLens = slices.Insert(t.rollupLens, i, len(prefix))
	}
	t.stats.RollupBuilds++
	for name, ts := range t.topics {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for e := range ts.entries.All() {
			r.add(e)
		}
		it := &rankItem{r: r, topic: name, ts: ts}
		ts.ranks = append(ts.ranks, it)
		r.rank.set(it, ts.score())
	}
	return r, nil
}

// dropRollup stops maintaining r. Called with t.mu held.
func (t *Tracker) dropRollup(r *rollup) {
	for b := r.rank.top; b != nil; b = b.down {
		for it := b.head; it != nil; it = it.next {
			if ts := t.topics[it.topic]; ts != nil {
				ts.ranks = slices.DeleteFunc(ts.ranks, func(x *rankItem) bool { return x == it })
			}
		}
	}
	delete(t.rollups, r.prefix)
	still := false
	for p := range t.rollups {
		if len(p) == len(r.prefix) {
			still = true
			break
		}
	}
	if !still {
		if i, found := slices.BinarySearch(t.rollupLens, len(r.prefix)); found {
			t.rollupLens = slices.Delete(t.rollupLens, i, i+1)
		}
	}
}

// sweepRollups drops the roll-ups nobody has held for RollupLinger (all
// unheld ones when force is set). Called with t.mu held.
func (t *Tracker) sweepRollups(force bool) {
	for _, r := range t.rollups {
		if r.holds == 0 && (force || t.now.Sub(r.idleSince) >= t.cfg.RollupLinger) {
			t.dropRollup(r)
		}
	}
}

// tickRollups is Tick's share: drop lingering roll-ups, at most once a
// second. Called with t.mu held.
func (t *Tracker) tickRollups() {
	if len(t.rollups) == 0 || t.now.Sub(t.lastRollupSweep) < time.Second {
		return
	}
	t.lastRollupSweep = t.now
	t.sweepRollups(false)
}

func rollupPrefix(topic string) (string, error) {
	if !IsRollup(topic) {
		return "", fmt.Errorf("%w: %q does not end in *", ErrNotRollup, topic)
	}
	return topic[:len(topic)-1], nil
}

// HoldRollup starts (or keeps) maintaining the counts of roll-up topic
// (a prefix followed by "*"), so that Count(topic) returns them and
// subscribers are told when they change. Each HoldRollup must be matched
// by one ReleaseRollup. The first hold of a roll-up scans every topic once;
// later ones are O(1). It returns ErrNotRollup for a topic without the
// trailing "*", and ErrTooManyRollups when Config.MaxRollups roll-ups are
// held already.
func (t *Tracker) HoldRollup(topic string) error {
	prefix, err := rollupPrefix(topic)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rollupLocked(prefix)
	if err != nil {
		return err
	}
	r.holds++
	return nil
}

// ReleaseRollup drops one hold of topic taken by HoldRollup. The roll-up
// is kept, and maintained, for Config.RollupLinger after its last release.
func (t *Tracker) ReleaseRollup(topic string) {
	prefix, err := rollupPrefix(topic)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.rollups[prefix]; r != nil && r.holds > 0 {
		r.holds--
		if r.holds == 0 {
			r.idleSince = t.now
		}
	}
}

// TopicCounts is one topic and its counts, as Busiest returns them.
type TopicCounts struct {
	Topic string
	Counts
}

// Busiest returns the counts of every topic starting with prefix (the
// roll-up prefix+"*") and the limit topics with that prefix that have the
// most viewers plus users, busiest first (ties by name; which topics of a
// tie straddling the limit are returned is unspecified). It builds the
// roll-up if nobody holds it (one scan of the topics; it then lingers for
// Config.RollupLinger), and costs O(limit) afterwards, however many topics
// the node has. It returns ErrTooManyRollups like HoldRollup.
func (t *Tracker) Busiest(prefix string, limit int) (Counts, []TopicCounts, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.rollupLocked(prefix)
	if err != nil {
		return Counts{}, nil, err
	}
	if r.holds == 0 {
		r.idleSince = t.now
	}
	top := make([]TopicCounts, 0, min(limit, 1024))
	for b := r.rank.top; b != nil && len(top) < limit; b = b.down {
		from := len(top)
		for it := b.head; it != nil && len(top) < limit; it = it.next {
			ts := it.ts
			top = append(top, TopicCounts{Topic: it.topic, Counts: Counts{Viewers: ts.viewers, Users: len(ts.users), Connections: ts.conns}})
		}
		// Buckets come busiest first; within one, order by name.
		slices.SortFunc(top[from:], func(a, b TopicCounts) int { return strings.Compare(a.Topic, b.Topic) })
	}
	return r.counts(), top, nil
}

// Rollups returns the number of roll-ups maintained (held or lingering).
func (t *Tracker) Rollups() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.rollups)
}

// ranking orders one roll-up's topics by score with O(1) moves: topics of
// equal score share a bucket, and buckets form a list from the highest
// score (top) down. A presence change moves its topic's score by at most
// one, so to an adjacent bucket (the structure of O(1) LFU caches).
type ranking struct {
	top, bottom *bucket
}

type bucket struct {
	score    int
	head     *rankItem
	up, down *bucket // up: the next higher score
}

// rankItem is one topic in one roll-up's ranking.
type rankItem struct {
	r          *rollup
	topic      string
	ts         *topicState // the topic's state, which holds this item
	b          *bucket
	prev, next *rankItem
}

// set moves it to score, creating its bucket if needed.
func (rk *ranking) set(it *rankItem, score int) {
	old := it.b
	if old != nil && old.score == score {
		return
	}
	// Walk from the topic's bucket (a new topic: from the bottom, as new
	// topics score low) to where score belongs.
	var target, above, below *bucket
	b := old
	if b == nil {
		b = rk.bottom
	}
	switch {
	case b == nil: // empty ranking
	case score >= b.score:
		for b != nil && b.score < score {
			below, b = b, b.up
		}
		if b != nil && b.score == score {
			target = b
		} else {
			above = b
		}
	default:
		for b != nil && b.score > score {
			above, b = b, b.down
		}
		if b != nil && b.score == score {
			target = b
		} else {
			below = b
		}
	}
	if target == nil {
		target = &bucket{score: score, up: above, down: below}
		if above != nil {
			above.down = target
		} else {
			rk.top = target
		}
		if below != nil {
			below.up = target
		} else {
			rk.bottom = target
		}
	}
	if old != nil {
		rk.unlink(it)
	}
	it.b, it.prev, it.next = target, nil, target.head
	if target.head != nil {
		target.head.prev = it
	}
	target.head = it
}

// remove takes it out of the ranking.
func (rk *ranking) remove(it *rankItem) {
	if it.b != nil {
		rk.unlink(it)
	}
}

func (rk *ranking) unlink(it *rankItem) {
	b := it.b
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		b.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	it.b, it.prev, it.next = nil, nil, nil
	if b.head != nil {
		return
	}
	if b.up != nil {
		b.up.down = b.down
	} else {
		rk.top = b.down
	}
	if b.down != nil {
		b.down.up = b.up
	} else {
		rk.bottom = b.up
	}
}
