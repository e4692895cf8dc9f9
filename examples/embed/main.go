// Command embed shows Headcount inside a Go service: a tracker, its gossip node and the
// WebSocket gateway mounted on the service's own mux, next to an endpoint of its own that
// reads a count. It is the README's embedding example, kept compiling here.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway"
)

func main() {
	tcfg := tracker.DefaultConfig()
	tcfg.Name = "api-1"
	tr, err := tracker.New(tcfg)
	if err != nil {
		log.Fatal(err)
	}

	gcfg := gossip.DefaultConfig()
	gcfg.Name = tcfg.Name
	gcfg.BindAddr, gcfg.BindPort = "0.0.0.0", 7946
	gcfg.HTTPAddr = "10.0.0.5:8080"
	gcfg.Join = []string{"headcount-gossip.default.svc:7946"}
	node, err := gossip.New(gcfg, tr)
	if err != nil {
		log.Fatal(err)
	}

	wcfg := wsgateway.DefaultConfig()
	wcfg.Tracker = tr
	wcfg.NodeName = tcfg.Name
	wcfg.JWTSecret = []byte(os.Getenv("JWT_SECRET"))
	gw, err := wsgateway.New(wcfg)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/socket/", gw.Handler())
	mux.Handle("/v1/", gw.Handler())
	mux.HandleFunc("/lobby", func(w http.ResponseWriter, _ *http.Request) {
		c := tr.Count("lobby") // O(1), this node's view of the whole cluster
		fmt.Fprintf(w, "%d viewers, %d users\n", c.Viewers, c.Users)
	})
	srv := &http.Server{Addr: ":8080", Handler: mux}
	go func() { _ = srv.ListenAndServe() }()
	gw.SetReady(true)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	ctx := context.Background()
	_ = srv.Shutdown(ctx) // no new connections
	_ = node.Leave(ctx)   // goodbye: peers drop our presences at once
	_ = gw.Shutdown(ctx)  // close sockets with 1001 so clients reconnect elsewhere
	_ = node.Close()
}
