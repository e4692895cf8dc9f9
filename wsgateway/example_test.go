package wsgateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway"
)

// Example runs a single-node gateway (no gossip) and joins a topic the way the phoenix JS
// client does.
func Example() {
	tcfg := tracker.LocalConfig()
	tcfg.Name = "example"
	tr, err := tracker.New(tcfg)
	if err != nil {
		panic(err)
	}
	cfg := wsgateway.DefaultConfig()
	cfg.Tracker = tr
	cfg.JWTSecret = []byte("change me")
	gw, err := wsgateway.New(cfg)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(gw.Handler()) // the caller owns the server
	defer srv.Close()
	defer gw.Shutdown(context.Background()) //nolint:errcheck // runs before srv.Close

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket?vsn=2.0.0"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`["1","1","video:42","phx_join",{}]`))
	for i := 0; i < 2; i++ {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, frame, _ := ws.ReadMessage()
		fmt.Println(string(frame))
	}

	resp, err := http.Get(srv.URL + "/v1/topics/video:42")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))
	// Output:
	// ["1","1","video:42","phx_reply",{"status":"ok","response":{}}]
	// ["1",null,"video:42","presence_state",{"viewers":{"count":1},"users":{"count":0}}]
	// {"viewers":{"count":1},"users":{"count":0},"connections":{"count":1}}
}
