// Command server is the gateway the interop suite tests the official phoenix JS client
// against: one single node (package node without gossip) on a loopback port. It prints its
// base URL (http://127.0.0.1:PORT) as the first line of stdout and serves until stdin closes
// or it gets SIGINT/SIGTERM.
//
// POST /test/restart replaces the node by a new one on the same listener: every socket is
// closed by the server with 1001, as when a node is redeployed, and clients reconnect to the
// new node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/wsgateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	secret := flag.String("secret", "interop-secret", "HS256 secret for tokens")
	idle := flag.Duration("idle-timeout", 60*time.Second, "gateway idle timeout")
	// Long-poll (i12b): short timers so the suite sees 204s and session timeouts quickly.
	lpHold := flag.Duration("longpoll-hold", wsgateway.DefaultConfig().LongPollHold, "gateway LongPollHold")
	lpTimeout := flag.Duration("longpoll-session-timeout", wsgateway.DefaultConfig().LongPollSessionTimeout, "gateway LongPollSessionTimeout")
	// Identity and access (i11): a JWKS URL, public topics, leeway.
	jwksURL := flag.String("jwks-url", "", "gateway JWKSURL (an identity provider's key set)")
	publicTopics := flag.String("public-topics", "*", "gateway PublicTopics, comma-separated")
	flag.Parse()
	longPoll = func(c *wsgateway.Config) { c.LongPollHold, c.LongPollSessionTimeout = *lpHold, *lpTimeout }
	access = func(c *wsgateway.Config) {
		c.JWKSURL = *jwksURL
		c.PublicTopics = nil
		for _, p := range strings.Split(*publicTopics, ",") {
			if p != "" {
				c.PublicTopics = append(c.PublicTopics, p)
			}
		}
	}
	if err := run(*addr, []byte(*secret), *idle); err != nil {
		log.Fatal(err)
	}
}

// longPoll applies the long-poll flags to every gateway's Config.
var longPoll = func(*wsgateway.Config) {}

// access applies the identity and access flags to every gateway's Config.
var access = func(*wsgateway.Config) {}

// server holds the current node; /test/restart swaps it.
type server struct {
	secret []byte
	idle   time.Duration

	mu sync.Mutex
	nd *node.Node
}

// newNode starts a single node (no gossip: its tracker is ticked by the node) with a gateway.
func (s *server) newNode() (*node.Node, error) {
	cfg := node.LocalConfig()
	cfg.Name = "interop"
	cfg.Gossip = nil
	cfg.Gateway.JWTSecret = s.secret
	cfg.Gateway.DemoTokens = true
	cfg.Gateway.IdleTimeout = s.idle
	longPoll(cfg.Gateway)
	access(cfg.Gateway)
	return node.New(cfg)
}

func (s *server) current() *node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nd
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/test/restart" && r.Method == http.MethodPost {
		if err := s.restart(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "restarted")
		return
	}
	s.current().Handler().ServeHTTP(w, r)
}

// restart replaces the node by a new one, as a redeploy does: the old one leaves, closing
// its sockets with 1001.
func (s *server) restart(ctx context.Context) error {
	next, err := s.newNode()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.nd
	s.nd = next
	s.mu.Unlock()
	return old.Leave(ctx)
}

func run(addr string, secret []byte, idle time.Duration) error {
	s := &server{secret: secret, idle: idle}
	var err error
	if s.nd, err = s.newNode(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Printf("http://%s\n", ln.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	case err := <-served:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx)
	_ = s.current().Leave(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
