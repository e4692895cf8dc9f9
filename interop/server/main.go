// Command server is the gateway the interop suite tests the official phoenix JS client
// against: one node (a tracker and a wsgateway, no gossip) on a loopback port. It prints its
// base URL (http://127.0.0.1:PORT) as the first line of stdout and serves until stdin closes
// or it gets SIGINT/SIGTERM.
//
// POST /test/restart replaces the gateway by a new one on the same tracker and listener: every
// socket is closed by the server with 1001, as when a node is redeployed, and clients
// reconnect to the new gateway.
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

	"github.com/headcount-io/headcount/tracker"
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

// server holds the current gateway; /test/restart swaps it.
type server struct {
	tr     *tracker.Tracker
	secret []byte
	idle   time.Duration

	mu sync.Mutex
	gw *wsgateway.Gateway
}

func (s *server) newGateway() (*wsgateway.Gateway, error) {
	cfg := wsgateway.DefaultConfig()
	cfg.Tracker = s.tr
	cfg.NodeName = "interop"
	cfg.JWTSecret = s.secret
	cfg.DemoTokens = true
	cfg.IdleTimeout = s.idle
	longPoll(&cfg)
	access(&cfg)
	return wsgateway.New(cfg)
}

func (s *server) current() *wsgateway.Gateway {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw
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

func (s *server) restart(ctx context.Context) error {
	next, err := s.newGateway()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.gw
	s.gw = next
	s.mu.Unlock()
	return old.Shutdown(ctx)
}

func run(addr string, secret []byte, idle time.Duration) error {
	tcfg := tracker.LocalConfig()
	tcfg.Name = "interop"
	tr, err := tracker.New(tcfg)
	if err != nil {
		return err
	}
	s := &server{tr: tr, secret: secret, idle: idle}
	if s.gw, err = s.newGateway(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Without peers, the tracker's batched operations are flushed and dropped here.
	stopTicks := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopTicks:
				return
			case <-tr.Pending():
			case <-t.C:
			}
			tr.Tick(time.Now())
		}
	}()

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
	_ = s.current().Shutdown(ctx)
	err = srv.Shutdown(ctx)
	close(stopTicks)
	<-ticked
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
