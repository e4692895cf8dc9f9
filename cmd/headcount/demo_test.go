package main

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// freeConsecutivePorts returns the first of n consecutive free loopback
// ports. It looks below Linux's ephemeral range (32768 up), so outgoing
// connections of other tests on the machine cannot take them meanwhile.
func freeConsecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 1000 {
		base := 20000 + rand.IntN(12000)
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free consecutive ports")
	return 0
}

func TestDemoRunsAClusterWithAPagePerNode(t *testing.T) {
	base := freeConsecutivePorts(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, _, exit := background(t, ctx, "demo", "--nodes", "2", "--http-base", "127.0.0.1:"+strconv.Itoa(base))
	urlLine := regexp.MustCompile(`(?m)^node-(\d)  (http://\S+)$`)
	var urls []string
	waitFor(t, "the demo URLs", func() bool {
		select {
		case code := <-exit:
			t.Fatalf("demo exited with %d: %s", code, stderr.String())
		default:
		}
		urls = nil
		for _, m := range urlLine.FindAllStringSubmatch(stdout.String(), -1) {
			urls = append(urls, m[2])
		}
		return len(urls) == 2
	})
	if want := "http://127.0.0.1:" + strconv.Itoa(base+1) + "/"; urls[1] != want {
		t.Fatalf("node-1 URL %s, want %s", urls[1], want)
	}
	for _, u := range urls {
		waitFor(t, "two alive members on "+u, func() bool {
			_, body := httpGet(t, u+"v1/members")
			return strings.Count(body, `"status":"alive"`) == 2
		})
		if code, _ := httpGet(t, u); code != http.StatusOK {
			t.Fatalf("demo page %s: %d", u, code)
		}
	}
	resp, err := http.Post(urls[0]+"v1/demo/token?user=alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("demo token: %d", resp.StatusCode)
	}
	cancel()
	waitExit(t, "demo", exit, stderr)
}

func TestDemoUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--nodes", "0"},
		{"demo", "--nodes", "65"},
		{"demo", "--http-base", "127.0.0.1:65535", "--nodes", "2"},
		{"demo", "--http-base", "nonsense"},
	} {
		if r := runCmd(t, nil, args...); r.code != 2 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: got %+v", args, r)
		}
	}
}
