package main

import (
	"bytes"
	"fmt"
	"os"

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
