package tracker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Config validation.

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*tracker.Config)
	}{
		{"Name", func(c *tracker.Config) { c.Name = "" }},
		{"Name", func(c *tracker.Config) { c.Name = strings.Repeat("n", 256) }},
		{"BroadcastInterval", func(c *tracker.Config) { c.BroadcastInterval = 0 }},
		{"DigestInterval", func(c *tracker.Config) { c.DigestInterval = -time.Second }},
		{"RequestRetry", func(c *tracker.Config) { c.RequestRetry = 0 }},
		{"PermdownPeriod", func(c *tracker.Config) { c.PermdownPeriod = 0 }},
		{"DeadRetention", func(c *tracker.Config) { c.DeadRetention = 0 }},
		{"MaxDeltaOps", func(c *tracker.Config) { c.MaxDeltaOps = 0 }},
		{"LogMaxOps", func(c *tracker.Config) { c.LogMaxOps = -1 }},
		{"LogMaxBytes", func(c *tracker.Config) { c.LogMaxBytes = 0 }},
		{"MaxTopicLen", func(c *tracker.Config) { c.MaxTopicLen = 0 }},
		{"MaxTopicLen", func(c *tracker.Config) { c.MaxTopicLen = 1025 }},
		{"MaxUserLen", func(c *tracker.Config) { c.MaxUserLen = 2000 }},
		{"MaxMetaLen", func(c *tracker.Config) { c.MaxMetaLen = -1 }},
		{"MaxMetaLen", func(c *tracker.Config) { c.MaxMetaLen = 64<<10 + 1 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			cfg := tracker.DefaultConfig()
			cfg.Name = "a"
			c.mod(&cfg)
			tr, err := tracker.New(cfg)
			require.Nil(t, tr)
			require.ErrorIs(t, err, tracker.ErrConfig)
			require.Contains(t, err.Error(), c.field)
			require.True(t, strings.HasPrefix(err.Error(), "tracker: "))
		})
	}
	for name, cfg := range map[string]tracker.Config{"DefaultConfig": tracker.DefaultConfig(), "LocalConfig": tracker.LocalConfig()} {
		t.Run(name, func(t *testing.T) {
			cfg.Name = "a"
			tr, err := tracker.New(cfg)
			require.NoError(t, err)
			require.Equal(t, "a", tr.Self().Name)
			require.NotZero(t, tr.Self().Epoch, "epoch 0 is derived from the clock")
		})
	}
	cfg := tracker.DefaultConfig()
	cfg.Name, cfg.Epoch = "a", 42
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	require.Equal(t, crdt.Replica{Name: "a", Epoch: 42}, tr.Self())
}
