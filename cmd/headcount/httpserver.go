package main

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/headcount-io/headcount/internal/httpguard"
)

// serveHTTP serves h on ln in a new goroutine, with the timeouts of an
// operator listener (no connection caps, no write timeout, so long profiles
// work), and returns the server and a channel that receives Serve's result.
// Stop it with Shutdown or Close.
func serveHTTP(ln net.Listener, h http.Handler, log *slog.Logger) (*http.Server, <-chan error) {
	cfg := httpguard.DefaultConfig()
	cfg.MaxConns, cfg.MaxConnsPerIP, cfg.WriteTimeout = 0, 0, 0
	g, err := httpguard.New(cfg)
	if err != nil {
		panic(err) // the defaults are valid
	}
	srv := g.Server(h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	served := make(chan error, 1)
	ln = g.Listener(&notGossipListener{Listener: ln, log: log, logEvery: 10 * time.Second})
	go func() { served <- srv.Serve(ln) }()
	return srv, served
}
