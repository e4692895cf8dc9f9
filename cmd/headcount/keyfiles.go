package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/wsgateway"
)

// loadJWTSecret reads the HMAC keys of --jwt-secret-file: one per line,
// each trimmed of surrounding whitespace, empty lines skipped (any key
// verifies, so a key rotates by adding the new line first and removing the
// old one later). A file with no key is an error.
func loadJWTSecret(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--jwt-secret-file: %w", err)
	}
	keys, err := wsgateway.ParseHMACKeys(b)
	if err != nil {
		return nil, fmt.Errorf("--jwt-secret-file %s: file is empty", path)
	}
	return keys, nil
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
		if c.jwtSecrets, err = loadJWTSecret(a.jwtSecretFile); err != nil {
			return err
		}
	case jwtFromEnv:
		if c.jwtSecrets, err = wsgateway.ParseHMACKeys([]byte(jwtEnv)); err != nil {
			return fmt.Errorf("%s is set but empty", envJWTSecret)
		}
	}
	from := "--jwt-secret-file " + a.jwtSecretFile
	if jwtFromEnv {
		from = envJWTSecret
	}
	if err := checkJWTSecrets(from, c.jwtSecrets, a.allowShortJWTSecret); err != nil {
		return err
	}
	if len(c.jwtSecrets) > 0 {
		c.jwtSecret = c.jwtSecrets[0]
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

// checkJWTSecrets refuses an HMAC key shorter than minJWTSecret unless
// allowShort (--allow-short-jwt-secret).
func checkJWTSecrets(from string, keys [][]byte, allowShort bool) error {
	for i, k := range keys {
		if n := len(k); n < minJWTSecret && !allowShort {
			which := "the key"
			if len(keys) > 1 {
				which = fmt.Sprintf("key %d", i+1)
			}
			return fmt.Errorf("%s: %s is %d bytes, want at least %d ('headcount keygen' makes one), or pass --allow-short-jwt-secret", from, which, n, minJWTSecret)
		}
	}
	return nil
}
