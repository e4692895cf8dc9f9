package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// gossipKeySize is the length of keys made by keygen: 32 bytes selects
// AES-256 in memberlist.
const gossipKeySize = 32

// runKeygen prints a new random gossip key, base64-encoded, for a
// --gossip-key-file.
func runKeygen(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "keygen")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	key := make([]byte, gossipKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("reading random bytes: %w", err)
	}
	_, err := fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(key))
	return err
}
