package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/headcount-io/headcount/gossip"
)

// loadJWTSecret reads the HS256 key of --jwt-secret-file: the file's bytes
// with surrounding whitespace trimmed. An empty file is an error.
func loadJWTSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--jwt-secret-file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("--jwt-secret-file %s: file is empty", path)
	}
	return b, nil
}

// loadGossipKeys reads --gossip-key-file in the format of
// gossip.ParseKeyFile: one base64 (or hex) key per line, 16, 24 or 32
// bytes, the first one encrypting and all of them decrypting.
func loadGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	keys, err := gossip.ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file %s: %w", path, err)
	}
	return keys, nil
}

// resolveSecrets reads the JWT key and the gossip keys into c, from their
// files or from the HEADCOUNT_JWT_SECRET and HEADCOUNT_GOSSIP_KEY
// variables (one source each: both is an error), and refuses a JWT key
// shorter than minJWTSecret unless --allow-short-jwt-secret is given.
func (a *agentFlags) resolveSecrets(c *agentConfig) error {
	var err error
	jwtEnv, jwtFromEnv := os.LookupEnv(envJWTSecret)
	switch {
	case a.jwtSecretFile != "" && jwtFromEnv:
		return usagef("--jwt-secret-file and %s are both set: use one", envJWTSecret)
	case a.jwtSecretFile != "":
		if c.jwtSecret, err = loadJWTSecret(a.jwtSecretFile); err != nil {
			return err
		}
	case jwtFromEnv:
		if c.jwtSecret = bytes.TrimSpace([]byte(jwtEnv)); len(c.jwtSecret) == 0 {
			return fmt.Errorf("%s is set but empty", envJWTSecret)
		}
	}
	if n := len(c.jwtSecret); n > 0 && n < minJWTSecret && !a.allowShortJWTSecret {
		from := "--jwt-secret-file " + a.jwtSecretFile
		if jwtFromEnv {
			from = envJWTSecret
		}
		return fmt.Errorf("%s: the key is %d bytes, want at least %d ('headcount keygen' makes one), or pass --allow-short-jwt-secret", from, n, minJWTSecret)
	}

	keyEnv, keyFromEnv := os.LookupEnv(envGossipKey)
	c.gossipKeyFile = a.gossipKeyFile
	switch {
	case a.gossipKeyFile != "" && keyFromEnv:
		return usagef("--gossip-key-file and %s are both set: use one", envGossipKey)
	case a.gossipKeyFile != "":
		if c.gossipKeys, err = loadGossipKeys(a.gossipKeyFile); err != nil {
			return err
		}
	case keyFromEnv:
		// The file's format, with commas allowed between keys.
		keys, err := gossip.ParseKeyFile([]byte(strings.ReplaceAll(keyEnv, ",", "\n")))
		if err != nil {
			return fmt.Errorf("%s: %w", envGossipKey, err)
		}
		c.gossipKeys = keys
	}
	return nil
}
