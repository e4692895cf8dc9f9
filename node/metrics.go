package node

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// registry is the node's view of Config.Registerer, and the one place the node label is
// added: every collector a part of the node registers gets node=<Name>, and unregisterAll
// (in Close) removes them all, so a node can stop and a new one start on the same registry.
type registry struct {
	wrapped prometheus.Registerer

	mu  sync.Mutex
	all []prometheus.Collector
}

var _ prometheus.Registerer = (*registry)(nil)

func newRegistry(name string, reg prometheus.Registerer) *registry {
	return &registry{wrapped: prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg)}
}

// Register implements prometheus.Registerer.
func (r *registry) Register(c prometheus.Collector) error {
	if err := r.wrapped.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.all = append(r.all, c)
	r.mu.Unlock()
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *registry) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	for i, x := range r.all {
		if x == c {
			r.all = append(r.all[:i], r.all[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	return r.wrapped.Unregister(c)
}

// unregisterAll unregisters every collector still registered through r.
func (r *registry) unregisterAll() {
	r.mu.Lock()
	all := r.all
	r.all = nil
	r.mu.Unlock()
	for _, c := range all {
		r.wrapped.Unregister(c)
	}
}
