// Command embed shows Headcount inside a Go service: a whole node (tracker, gossip, gateway)
// from package node, mounted on the service's own mux next to an endpoint of its own that reads
// a count. GET /v1/members lists every node of the cluster. It is the README's embedding
// example, kept compiling here.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/headcount-io/headcount/node"
)

func main() {
	cfg := node.DefaultConfig()
	cfg.Name = "api-1"
	cfg.Gossip.HTTPAddr = "10.0.0.5:8080" // shown to peers in /v1/members
	cfg.Gossip.Join = []string{"headcount-gossip.default.svc:7946"}
	cfg.Gateway.JWTSecret = []byte(os.Getenv("JWT_SECRET"))
	nd, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", nd.Handler()) // /socket/websocket, /v1/topics/..., /v1/members, /metrics
	mux.HandleFunc("/lobby", func(w http.ResponseWriter, _ *http.Request) {
		c := nd.Tracker().Count("lobby") // O(1), this node's view of the whole cluster
		fmt.Fprintf(w, "%d viewers, %d users\n", c.Viewers, c.Users)
	})
	srv := &http.Server{Addr: ":8080", Handler: mux}
	go func() { _ = srv.ListenAndServe() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background()) // the service's own server: no new requests
	_ = nd.Leave(context.Background())     // goodbye to the cluster, sockets closed with 1001
}
