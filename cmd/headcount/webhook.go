package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
)

// startWebhook starts the occupancy webhooks of --webhook-url (issue 13): trk's counts, the
// members g sees alive (not failed ones), metrics on reg with the node label.
func startWebhook(cfg webhook.Config, name string, trk *tracker.Tracker, g *gossip.Node, reg prometheus.Registerer, log *slog.Logger) (*webhook.Hook, error) {
	cfg.Tracker = trk
	cfg.Members = func() []string {
		var names []string
		for _, m := range g.Members() {
			if m.Status == gossip.StatusAlive { // failed members are listed too, until reaped
				names = append(names, m.Name)
			}
		}
		return names
	}
	cfg.Logger = log
	cfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg)
	return webhook.New(cfg)
}
