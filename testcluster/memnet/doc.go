// Package memnet is an in-process network for hashicorp/memberlist with fault injection.
//
// A Network hands out Transports (memberlist.NodeAwareTransport), one per node, each with its own
// fake address ("10.77.x.y:7946"). Packets are delivered through buffered channels and dropped when
// the receiver's buffer is full, exactly like UDP on a busy host; streams are net.Pipe pairs whose
// dial honours the memberlist timeout. Nothing in this package ever blocks a memberlist loop for
// longer than the timeout that loop passed in.
//
// Faults are set per directed link (from address -> to address) or for the whole network:
// partitions, asymmetric cuts, packet loss and packet delay. A cut link drops packets silently and
// makes dials fail at once (a refused connection rather than a slow timeout, which keeps tests
// fast). Changing faults closes the open streams that cross a newly cut link.
//
// Killing a node is Transport.Shutdown: its address vanishes from the network at once, in-flight
// packets to it are dropped and its streams are closed, so its peers see a crash.
//
// memnet must never be used for production traffic: it has no security and no flow control.
// memberlist's own MockNetwork is not used because its unbuffered channels deadlock under load and
// its Shutdown does not make a node disappear.
package memnet
