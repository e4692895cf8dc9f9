package main

import (
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serveHTTP serves h on ln in a new goroutine and returns the server and a
// channel that receives Serve's result. Stop it with Shutdown or Close.
func serveHTTP(ln net.Listener, h http.Handler, log *slog.Logger) (*http.Server, <-chan error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	ln = &notGossipListener{Listener: ln, log: log, logEvery: 10 * time.Second}
	go func() { served <- srv.Serve(ln) }()
	return srv, served
}
