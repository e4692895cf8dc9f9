package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// reloadGossipKeys applies the keys of --gossip-key-file to a running
// keyring (on SIGHUP): every key in the file is installed, the first one
// becomes the key that encrypts, and keys no longer in the file are removed.
// This is how keys rotate without a restart.
func reloadGossipKeys(kr *memberlist.Keyring, path string) (int, error) {
	if kr == nil {
		return 0, errors.New("gossip encryption is off: start with --gossip-key-file to use keys")
	}
	if path == "" {
		return 0, errors.New("no --gossip-key-file to reload")
	}
	keys, err := loadGossipKeys(path)
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return 0, fmt.Errorf("installing a key: %w", err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return 0, fmt.Errorf("using the first key: %w", err)
	}
	for _, old := range kr.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || bytes.Equal(k, old)
		}
		if !keep {
			if err := kr.RemoveKey(old); err != nil {
				return 0, fmt.Errorf("removing an old key: %w", err)
			}
		}
	}
	return len(keys), nil
}

// reloadJWTKeys re-reads --jwt-secret-file, --jwt-public-key-file and
// --jwks-file (on SIGHUP) and gives the gateway the new keys: tokens are
// checked against them from now on, open sockets keep their identity. When
// a file fails the keys in use stay.
func (ag *agent) reloadJWTKeys() {
	keys, err := ag.cfg.auth.reload()
	if err == nil {
		err = ag.node.Gateway().SetJWTKeys(keys)
	}
	if err != nil {
		ag.log.Error("JWT keys not reloaded; the previous keys stay in use", "err", err)
		return
	}
	ag.log.Info("JWT keys reloaded", "hmac", len(keys.HMAC), "public", len(keys.Public), "jwks", len(keys.JWKS))
}
