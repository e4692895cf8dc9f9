package tracker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// Owner is a connection id: the presences of one owner leave together
// (UntrackOwner). Mint owners with Tracker.NewOwner, the one source of
// owners on a node, so that two callers (the gateway and an embedding
// service, say) never share one.
type Owner uint64

// Ref identifies a presence within its owner replica's chain; Update mints
// a new one.
type Ref = crdt.Seq

// Counts is what a topic looks like from this node, over replicas it sees
// as up.
type Counts struct {
	// Viewers is the number of anonymous connections.
	Viewers int `json:"viewers"`
	// Users is the number of distinct logged-in user ids (two tabs of one
	// user, even on two nodes, count once).
	Users int `json:"users"`
	// Connections is the number of presences, anonymous or not.
	Connections int `json:"connections"`
}

// Presence is one entry of List.
type Presence struct {
	Node  crdt.Replica
	Owner Owner
	Topic string
	User  string
	Meta  []byte
	Ref   Ref
}

// Errors returned by the local API.
var (
	ErrAlreadyTracked = errors.New("tracker: already tracked")
	ErrNoPresence     = errors.New("tracker: no such presence")
	ErrInvalidTopic   = errors.New("tracker: invalid topic")
	ErrInvalidUser    = errors.New("tracker: invalid user")
	ErrMetaTooLarge   = errors.New("tracker: meta too large")
	ErrClosed         = errors.New("tracker: closed")
	// ErrTooManyPresences and ErrTooManyTopics: Track would exceed
	// Config.MaxLocalPresences or Config.MaxLocalTopics.
	ErrTooManyPresences = errors.New("tracker: too many presences on this node")
	ErrTooManyTopics    = errors.New("tracker: too many topics on this node")
)

// Tracker is one node's presence engine. All methods are safe for
// concurrent use; none blocks on I/O.
type Tracker struct {
	cfg  Config
	self crdt.Replica
	log  *slog.Logger

	minted atomic.Uint64 // the last owner NewOwner minted

	mu        sync.Mutex
	state     *crdt.State
	owners    ownerIndex
	topics    map[string]*topicState
	presences int
	local     localCount // this node's own presences and topics, for the caps
	subs      []*Subscription
	pending   chan struct{}
	left      bool

	replicas map[string]*replicaState
	// sweep says some replica may need Tick's attention (not yet ticked, down, or leaving):
	// set by every change that can make one so, cleared by a Tick that finds none, so an idle
	// tick of a large cluster does not walk every replica.
	sweep      bool
	deadAt     map[string]time.Time
	requested  map[string]time.Time
	answered   map[[2]string]time.Time // (requester, owner) -> last catch-up answer
	now        time.Time
	lastDigest time.Time
	stats      Stats

	// Roll-ups (rollup.go): by prefix, the distinct prefix lengths in
	// increasing order, and the last sweep of lingering ones.
	rollups         map[string]*rollup
	rollupLens      []int
	lastRollupSweep time.Time

	// answerHook, when set (by tests, before the tracker is used), runs in
	// Handle between taking a catch-up answer and building it.
	answerHook func()
}

type replicaState struct {
	replica   crdt.Replica
	up        bool
	downSince time.Time // zero until the first Tick after going down
	// leaving is set by a goodbye while membership still sees the replica up:
	// its presences are hidden until membership confirms the leave, and shown
	// again if it has not after GoodbyeGrace (a spoofed goodbye).
	leaving      bool
	leavingSince time.Time // zero until the first Tick after the goodbye
	// seqAt is when this tracker's sequence for the replica last advanced (or
	// the replica was first announced): the base of the plausibility bound on
	// sequence jumps. Zero until the first Tick if that happened before one.
	seqAt time.Time
	// advancedAt is when data last advanced this tracker's sequence for the
	// replica (zero: never): see deferRequest.
	advancedAt time.Time
}

// New returns a Tracker for cfg. It returns an error wrapping ErrConfig
// when a field is invalid.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Epoch == 0 {
		cfg.Epoch = uint64(time.Now().UnixNano())
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	self := crdt.Replica{Name: cfg.Name, Epoch: cfg.Epoch}
	return &Tracker{
		cfg:       cfg,
		self:      self,
		log:       lg.With("node", cfg.Name),
		state:     crdt.NewState(self, crdt.Options{LogMaxOps: cfg.LogMaxOps, LogMaxBytes: cfg.LogMaxBytes, SnapshotChunk: cfg.SnapshotChunk}),
		owners:    newOwnerIndex(),
		topics:    make(map[string]*topicState),
		pending:   make(chan struct{}, 1),
		replicas:  make(map[string]*replicaState),
		deadAt:    make(map[string]time.Time),
		requested: make(map[string]time.Time),
		answered:  make(map[[2]string]time.Time),
	}, nil
}

// Self returns this node's replica identity.
func (t *Tracker) Self() crdt.Replica { return t.self }

// NewOwner mints an owner unique on this tracker (never 0). Every caller
// that tracks presences on this tracker (the gateway, testcluster, an
// embedding service) must take its owners from here: owners from two
// counters collide, and then one connection's close removes another's
// presences. Safe for concurrent use; it never blocks.
func (t *Tracker) NewOwner() Owner { return Owner(t.minted.Add(1)) }

// Config returns the configuration the tracker runs with.
func (t *Tracker) Config() Config { return t.cfg }

func (t *Tracker) checkArgs(topic, user string, meta []byte) error {
	switch {
	case topic == "" || len(topic) > t.cfg.MaxTopicLen:
		return fmt.Errorf("%w: length %d (1..%d bytes)", ErrInvalidTopic, len(topic), t.cfg.MaxTopicLen)
	case IsRollup(topic):
		return fmt.Errorf("%w: %q is a roll-up (it ends in *): observe it, do not track it", ErrInvalidTopic, topic)
	case len(user) > t.cfg.MaxUserLen:
		return fmt.Errorf("%w: length %d (max %d bytes)", ErrInvalidUser, len(user), t.cfg.MaxUserLen)
	case len(meta) > t.cfg.MaxMetaLen:
		return fmt.Errorf("%w: %d bytes (max %d)", ErrMetaTooLarge, len(meta), t.cfg.MaxMetaLen)
	}
	return nil
}

// Track records that owner is present in topic, as user (anonymous when
// user is ""), and returns the presence's ref. It returns ErrAlreadyTracked
// if owner is already in topic, ErrInvalidTopic, ErrInvalidUser or
// ErrMetaTooLarge for bad arguments, ErrTooManyPresences or
// ErrTooManyTopics over the node's caps, and ErrClosed after Leave.
func (t *Tracker) Track(owner Owner, topic, user string, meta []byte) (Ref, error) {
	if err := t.checkArgs(topic, user, meta); err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.left {
		return 0, ErrClosed
	}
	dup, any := t.owners.find(owner, topic)
	if dup != nil {
		return 0, fmt.Errorf("%w: owner %d in %q", ErrAlreadyTracked, owner, topic)
	}
	ts := t.topics[topic]
	if err := t.local.admit(ts, t.cfg.MaxLocalPresences, t.cfg.MaxLocalTopics); err != nil {
		return 0, err
	}
	var e *crdt.Entry
	if ts != nil {
		e = t.state.AddInterned(ts.name, user, uint64(owner), meta)
	} else {
		e = t.state.Add(topic, user, uint64(owner), meta)
	}
	t.owners.add(owner, e, any)
	t.local.count(t.joinIn(ts, e))
	t.signal()
	return e.Ref, nil
}

// Update replaces the meta of owner's presence in topic, minting a new ref.
// It returns ErrNoPresence if owner is not in topic.
func (t *Tracker) Update(owner Owner, topic string, meta []byte) (Ref, error) {
	if len(meta) > t.cfg.MaxMetaLen {
		return 0, fmt.Errorf("%w: %d bytes (max %d)", ErrMetaTooLarge, len(meta), t.cfg.MaxMetaLen)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.left {
		return 0, ErrClosed
	}
	old, _ := t.owners.find(owner, topic)
	if old == nil {
		return 0, fmt.Errorf("%w: owner %d in %q", ErrNoPresence, owner, topic)
	}
	t.state.Remove(old.Ref)
	e := t.state.AddInterned(old.Topic, old.User, old.Conn, meta)
	t.owners.replace(owner, old, e)
	t.join(e) // first, so that the topic's state survives the leave
	t.leave(old)
	t.signal()
	return e.Ref, nil
}

// Untrack removes owner's presence in topic. It returns ErrNoPresence if
// there is none.
func (t *Tracker) Untrack(owner Owner, topic string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, _ := t.owners.find(owner, topic)
	if e == nil {
		return fmt.Errorf("%w: owner %d in %q", ErrNoPresence, owner, topic)
	}
	t.removeLocal(e)
	t.owners.remove(owner, e)
	t.signal()
	return nil
}

// UntrackOwner removes every presence of owner (a closed connection) and
// returns how many there were.
func (t *Tracker) UntrackOwner(owner Owner) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	first, more := t.owners.take(owner)
	if first == nil {
		return 0
	}
	t.removeLocal(first)
	for _, e := range more {
		t.removeLocal(e)
	}
	t.signal()
	return 1 + len(more)
}

func (t *Tracker) removeLocal(e *crdt.Entry) {
	ts := t.topics[e.Topic]
	t.local.release(ts)
	if !t.left {
		// After our goodbye peers have dropped us: the local view is kept
		// consistent, but no more operations are emitted.
		t.state.Remove(e.Ref)
	}
	t.leaveFrom(ts, e)
}

// signal wakes the transport: local operations wait for Tick.
func (t *Tracker) signal() {
	select {
	case t.pending <- struct{}{}:
	default:
	}
}

// Pending returns a channel that receives a value when local operations
// are waiting to be flushed by Tick. It never blocks the tracker.
func (t *Tracker) Pending() <-chan struct{} { return t.pending }

// Count returns the counts of topic in O(1). For a roll-up topic (ending
// in "*") they are the roll-up's while it is held or lingering (see
// HoldRollup), and zero otherwise.
func (t *Tracker) Count(topic string) Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if IsRollup(topic) {
		if r := t.rollups[topic[:len(topic)-1]]; r != nil {
			return r.counts()
		}
		return Counts{}
	}
	ts := t.topics[topic]
	if ts == nil {
		return Counts{}
	}
	return Counts{Viewers: ts.viewers, Users: len(ts.users), Connections: ts.conns}
}

// List returns the visible presences of topic, in no particular order.
func (t *Tracker) List(topic string) []Presence {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.topics[topic]
	if ts == nil {
		return nil
	}
	out := make([]Presence, 0, ts.entries.Len())
	for e := range ts.entries.All() {
		out = append(out, Presence{Node: e.Owner(), Owner: Owner(e.Conn), Topic: e.Topic, User: e.User, Meta: e.Meta, Ref: e.Ref})
	}
	return out
}

// Topics returns the topics that have at least one visible presence.
func (t *Tracker) Topics() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.topics))
	for k := range t.topics {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
