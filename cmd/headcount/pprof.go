package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startPprof serves net/http/pprof on its own listener, kept apart from the
// public HTTP address so profiles are never exposed by accident.
func startPprof(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError("pprof", addr, err)
	}
	mux := http.NewServeMux()
	pprofRoutes(mux)
	srv, _ := serveHTTP(ln, mux, log)
	log.Info("pprof listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return srv, nil
}

// startAdmin serves the operator endpoints of --admin-http: the gateway's
// admin handler (/metrics, /v1/members) and net/http/pprof.
func startAdmin(addr string, admin http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError("admin-http", addr, err)
	}
	mux := http.NewServeMux()
	pprofRoutes(mux)
	mux.Handle("/", admin)
	srv, _ := serveHTTP(ln, mux, log)
	log.Info("admin endpoints listening", "addr", "http://"+ln.Addr().String(), "paths", "/metrics /v1/members /debug/pprof/")
	return srv, nil
}

func pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
