package gossip

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProfilesAreValid(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "local": LocalConfig(), "test": TestConfig()} {
		c.Name = "n"
		require.NoError(t, c.validate(), name)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := map[string]func(*Config){
		"Name":           func(c *Config) { c.Name = "" },
		"HTTPAddr":       func(c *Config) { c.HTTPAddr = strings.Repeat("x", MaxHTTPAddrLen+1) },
		"Label":          func(c *Config) { c.Label = strings.Repeat("x", 256) },
		"SecretKeys[1]":  func(c *Config) { c.SecretKeys = [][]byte{make([]byte, 16), make([]byte, 5)} },
		"ProbeTimeout":   func(c *Config) { c.ProbeTimeout = c.ProbeInterval },
		"TickInterval":   func(c *Config) { c.TickInterval = 0 },
		"MaxPacketSize":  func(c *Config) { c.MaxPacketSize = 10 },
		"MaxMessageSize": func(c *Config) { c.MaxMessageSize = 30 << 20 },
		"Fanout":         func(c *Config) { c.Fanout = 0 },
		"BindPort":       func(c *Config) { c.BindPort = 70000 },
		"JoinBackoffMax": func(c *Config) { c.JoinBackoffMax = time.Millisecond },
		"RejoinInterval": func(c *Config) { c.RejoinInterval = -1 },
		"PeerQueueBytes": func(c *Config) { c.PeerQueueBytes = 1 },
	}
	for field, mutate := range cases {
		c := DefaultConfig()
		c.Name = "n"
		mutate(&c)
		err := c.validate()
		require.ErrorIs(t, err, ErrInvalidConfig, field)
		require.Contains(t, err.Error(), field)
	}
}

func TestParseKeyFile(t *testing.T) {
	k1 := []byte("0123456789abcdef")
	k2 := []byte("0123456789abcdef0123456789abcdef")
	file := "# rotation in progress\n" + base64.StdEncoding.EncodeToString(k1) + "\n\n  " + hex.EncodeToString(k2) + "  \n"
	keys, err := ParseKeyFile([]byte(file))
	require.NoError(t, err)
	require.Equal(t, [][]byte{k1, k2}, keys)

	raw := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff}
	keys, err = ParseKeyFile(raw)
	require.NoError(t, err)
	require.Equal(t, [][]byte{raw}, keys)

	for _, bad := range []string{"", "# only a comment\n", "not-a-key!\n", base64.StdEncoding.EncodeToString([]byte("short")) + "\n"} {
		_, err := ParseKeyFile([]byte(bad))
		require.ErrorIs(t, err, ErrBadKey, "%q", bad)
	}
}
