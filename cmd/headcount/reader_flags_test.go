package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headcount-io/headcount/wsgateway"
)

func TestReaderFlags(t *testing.T) {
	c, err := resolveAgent(t, map[string]string{"HEADCOUNT_CORS_ORIGINS": "https://*.example.com"},
		"--max-observed", "2000", "--max-channels", "150")
	if err != nil {
		t.Fatal(err)
	}
	gw := wsgateway.DefaultConfig()
	c.readers.apply(&gw)
	if !slices.Equal(gw.CORSOrigins, []string{"https://*.example.com"}) || gw.MaxObserved != 2000 || gw.MaxChannels != 150 {
		t.Errorf("cors %q observed %d channels %d", gw.CORSOrigins, gw.MaxObserved, gw.MaxChannels)
	}
	if gw.ObserveJoinBurst < 2000 || gw.JoinBurst < 150 {
		t.Errorf("join bursts %d/%d smaller than the channels a reconnecting page rejoins", gw.ObserveJoinBurst, gw.JoinBurst)
	}
	for _, args := range [][]string{{"--max-observed", "0"}, {"--max-channels", "-1"}} {
		r := runCmd(t, nil, append([]string{"agent"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%q: exit %d stderr %q, want exit 2 naming %s", args, r.code, r.stderr, args[0])
		}
	}
}

func TestLongPollFlags(t *testing.T) {
	c, err := resolveAgent(t, map[string]string{"HEADCOUNT_LONGPOLL_HOLD": "5s"}, "--longpoll-session-timeout", "40s")
	if err != nil {
		t.Fatal(err)
	}
	gw := wsgateway.DefaultConfig()
	c.readers.apply(&gw)
	if gw.LongPollHold != 5*time.Second || gw.LongPollSessionTimeout != 40*time.Second {
		t.Errorf("hold %s timeout %s", gw.LongPollHold, gw.LongPollSessionTimeout)
	}
	for _, args := range [][]string{{"--longpoll-hold", "0s"}, {"--longpoll-session-timeout", "-1s"}} {
		r := runCmd(t, nil, append([]string{"agent"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%q: exit %d stderr %q, want exit 2 naming %s", args, r.code, r.stderr, args[0])
		}
	}
}
