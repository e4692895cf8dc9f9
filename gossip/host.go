package gossip

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Host carries Headcount on a memberlist that an embedding service creates and owns for its own
// use, so the service runs one gossip cluster instead of two. NewHost puts a multiplexer in front
// of the service's own delegates; a Node started with Config.Host then sends and receives on
// that memberlist next to the service:
//
//   - user messages (NotifyMsg, broadcasts, SendBestEffort, SendReliable) carry a one-byte kind
//     prefix (service or Headcount); the service's broadcasts are prefixed for it, its direct
//     sends must go through Host.SendBestEffort and Host.SendReliable;
//   - the node meta and the push/pull state are sections (see section.go): the service's
//     NodeMeta gets the limit left after Headcount's part (which takes 4 bytes plus the
//     Headcount meta: about 25 bytes plus Config.HTTPAddr); read a peer's service part with
//     ServiceMeta;
//   - membership events go to both: the service's EventDelegate (and AliveDelegate and
//     MergeDelegate, if set) see nodes whose Meta is the service's part only.
//
// Every member of the cluster must run NewHost (a node without it reads the prefixes as its own
// messages). A member whose meta has no Headcount part (it runs no Node, or its Node stopped) is
// not a Headcount member: it is neither listed nor counted.
//
// The memberlist is the service's: it joins, leaves and shuts it down, and its config decides
// timers, encryption, label and transport; the Node only sends, receives and updates its meta.
// Stop the Node (Leave) before leaving memberlist. Host's methods are safe for concurrent use.
type Host struct {
	ml *memberlist.Memberlist
	kr *memberlist.Keyring

	svc       memberlist.Delegate      // may be nil
	svcEvents memberlist.EventDelegate // may be nil
	svcAlive  memberlist.AliveDelegate
	svcMerge  memberlist.MergeDelegate

	node atomic.Pointer[Node] // the attached node; written under mu

	// mu orders membership events with attach and detach. It is taken inside memberlist's
	// callbacks (under memberlist's node lock), so nothing holding it may call memberlist.
	mu sync.Mutex
	// members mirrors memberlist's live members (Meta = Headcount's part), so a node attached
	// after memberlist.Create learns everyone it would have heard join.
	members map[string]memberlist.Node
	meta    []byte // the attached node's meta section, nil when none
}

// ErrHostInUse is returned by New when Config.Host already carries a running Node.
var ErrHostInUse = fmt.Errorf("%w: Host already carries a node", ErrInvalidConfig)

// NewHost wraps the delegates the service set in mc (Delegate, Events, Alive, Merge; the others
// are left alone) and creates the memberlist with memberlist.Create(mc). Set the service's
// delegates first. The service uses Memberlist() for everything else (Join, Members, Leave,
// Shutdown). Errors come from memberlist.Create.
func NewHost(mc *memberlist.Config) (*Host, error) {
	h := &Host{
		kr:        mc.Keyring,
		svc:       mc.Delegate,
		svcEvents: mc.Events,
		svcAlive:  mc.Alive,
		svcMerge:  mc.Merge,
		members:   make(map[string]memberlist.Node),
	}
	d := &hostDelegate{h: h}
	mc.Delegate = d
	mc.Events = d
	if mc.Alive != nil {
		mc.Alive = d
	}
	if mc.Merge != nil {
		mc.Merge = d
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, err
	}
	h.ml = ml
	return h, nil
}

// Memberlist returns the service's memberlist. Its Members and LocalNode carry the combined
// meta: read the service's part with ServiceMeta.
func (h *Host) Memberlist() *memberlist.Memberlist { return h.ml }

// SendBestEffort sends the service's msg to one member by datagram, as
// memberlist.SendBestEffort does, with the service's prefix. msg is not retained.
func (h *Host) SendBestEffort(to *memberlist.Node, msg []byte) error {
	return h.ml.SendBestEffort(to, prefixed(kindService, msg))
}

// SendReliable sends the service's msg to one member by stream, as memberlist.SendReliable does,
// with the service's prefix. msg is not retained.
func (h *Host) SendReliable(to *memberlist.Node, msg []byte) error {
	return h.ml.SendReliable(to, prefixed(kindService, msg))
}

// ServiceMeta returns the service's part of a member's meta (nil when it has none or the meta is
// malformed). The slice is the caller's.
func ServiceMeta(n *memberlist.Node) []byte {
	svc, _, err := decodeSections(n.Meta)
	if err != nil {
		return nil
	}
	return bytes.Clone(svc)
}

func prefixed(kind byte, msg []byte) []byte {
	b := make([]byte, 0, 1+len(msg))
	return append(append(b, kind), msg...)
}

// attach makes h carry n: n's meta joins the node meta and n hears of every live member, then of
// every membership event. timeout bounds waiting for memberlist to broadcast the new meta (it
// spreads anyway; an error only means it has not been sent yet).
func (h *Host) attach(n *Node, timeout time.Duration) error {
	h.mu.Lock()
	if h.node.Load() != nil {
		h.mu.Unlock()
		return ErrHostInUse
	}
	h.meta = n.meta
	h.node.Store(n)
	names := make([]string, 0, len(h.members))
	for name := range h.members {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n.events.push(memberEvent{kind: evJoin, node: h.members[name]})
	}
	h.mu.Unlock()
	return h.ml.UpdateNode(timeout)
}

// detach withdraws n's meta (peers then forget n: a graceful leave if its goodbye came first, a
// failure otherwise) and stops routing messages and events to it. A no-op if n is not attached.
func (h *Host) detach(n *Node, timeout time.Duration) error {
	h.mu.Lock()
	if h.node.Load() != n {
		h.mu.Unlock()
		return nil
	}
	h.node.Store(nil)
	h.meta = nil
	h.mu.Unlock()
	return h.ml.UpdateNode(timeout)
}

// hostDelegate is the multiplexer memberlist calls. Like delegate, it returns quickly and never
// calls memberlist; the service's delegates are called as memberlist would call them.
type hostDelegate struct{ h *Host }

var (
	_ memberlist.Delegate      = (*hostDelegate)(nil)
	_ memberlist.EventDelegate = (*hostDelegate)(nil)
	_ memberlist.AliveDelegate = (*hostDelegate)(nil)
	_ memberlist.MergeDelegate = (*hostDelegate)(nil)
)

// NodeMeta returns the service's and the attached node's parts as sections. The service is
// offered what is left of limit; a service part over that makes memberlist panic, as it would
// without a Host.
func (d *hostDelegate) NodeMeta(limit int) []byte {
	d.h.mu.Lock()
	hc := d.h.meta
	d.h.mu.Unlock()
	var svc []byte
	if d.h.svc != nil {
		svc = d.h.svc.NodeMeta(limit - 1 - 2*sectionOverhead - len(hc))
	}
	return encodeSections(svc, hc)
}

// NotifyMsg routes a message by its prefix. It may be called concurrently; b is memberlist's and
// reused after return (the node copies; the service's NotifyMsg has memberlist's contract).
func (d *hostDelegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case kindService:
		if d.h.svc != nil {
			d.h.svc.NotifyMsg(b[1:])
		}
	case kindHeadcount:
		if n := d.h.node.Load(); n != nil {
			n.receive(b[1:])
		}
	default:
		if n := d.h.node.Load(); n != nil {
			n.stats.decodeErrors.Add(1)
		}
	}
}

// GetBroadcasts returns the service's broadcasts, prefixed; each costs one byte more, which the
// service is told through overhead. Headcount broadcasts nothing (see delegate.GetBroadcasts).
func (d *hostDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	if d.h.svc == nil {
		return nil
	}
	bs := d.h.svc.GetBroadcasts(overhead+1, limit)
	for i, b := range bs {
		bs[i] = prefixed(kindService, b)
	}
	return bs
}

// LocalState is the service's push/pull state as a section; Headcount adds none.
func (d *hostDelegate) LocalState(join bool) []byte {
	if d.h.svc == nil {
		return nil
	}
	return encodeSections(d.h.svc.LocalState(join), nil)
}

// MergeRemoteState hands the service its part of a peer's state; malformed state is dropped
// (and counted as a decode error while a node is attached).
func (d *hostDelegate) MergeRemoteState(buf []byte, join bool) {
	svc, _, err := decodeSections(buf)
	if err != nil {
		if n := d.h.node.Load(); n != nil {
			n.stats.decodeErrors.Add(1)
		}
		return
	}
	if d.h.svc != nil && len(svc) > 0 {
		d.h.svc.MergeRemoteState(svc, join)
	}
}

// NotifyJoin, NotifyLeave and NotifyUpdate run under memberlist's node lock: the mirror and the
// node's queue are updated, then the service's delegate is called with the service's view.
func (d *hostDelegate) NotifyJoin(n *memberlist.Node) {
	d.event(evJoin, n)
	if d.h.svcEvents != nil {
		d.h.svcEvents.NotifyJoin(serviceView(n))
	}
}

func (d *hostDelegate) NotifyLeave(n *memberlist.Node) {
	d.event(evLeave, n)
	if d.h.svcEvents != nil {
		d.h.svcEvents.NotifyLeave(serviceView(n))
	}
}

func (d *hostDelegate) NotifyUpdate(n *memberlist.Node) {
	d.event(evUpdate, n)
	if d.h.svcEvents != nil {
		d.h.svcEvents.NotifyUpdate(serviceView(n))
	}
}

// NotifyAlive is installed only if the service set an AliveDelegate.
func (d *hostDelegate) NotifyAlive(n *memberlist.Node) error {
	return d.h.svcAlive.NotifyAlive(serviceView(n))
}

// NotifyMerge is installed only if the service set a MergeDelegate.
func (d *hostDelegate) NotifyMerge(peers []*memberlist.Node) error {
	views := make([]*memberlist.Node, len(peers))
	for i, p := range peers {
		views[i] = serviceView(p)
	}
	return d.h.svcMerge.NotifyMerge(views)
}

func (d *hostDelegate) event(k eventKind, n *memberlist.Node) {
	c := headcountView(n)
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	if k == evLeave {
		delete(d.h.members, c.Name)
	} else {
		d.h.members[c.Name] = c
	}
	if node := d.h.node.Load(); node != nil {
		node.events.push(memberEvent{kind: k, node: c})
	}
}

// serviceView is a copy of n whose Meta is the service's part.
func serviceView(n *memberlist.Node) *memberlist.Node {
	c := copyNode(n)
	c.Meta = ServiceMeta(n)
	return &c
}

// headcountView is a copy of n whose Meta is Headcount's part: empty when n carries none (the
// node then treats n as no Headcount member), the raw meta when it is malformed (the node then
// lists n as incompatible).
func headcountView(n *memberlist.Node) memberlist.Node {
	c := copyNode(n)
	if _, hc, err := decodeSections(n.Meta); err == nil {
		c.Meta = bytes.Clone(hc)
	}
	return c
}
