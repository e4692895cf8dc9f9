package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"testing"

	"github.com/hashicorp/memberlist"
)

func TestReloadGossipKeysRotates(t *testing.T) {
	k := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	kr, err := memberlist.NewKeyring([][]byte{k(1)}, k(1))
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "keys", enc(k(1))+"\n"+enc(k(2))+"\n")
	// Step 1: the new key is added second: installed, not yet used.
	if n, err := reloadGossipKeys(kr, path); err != nil || n != 2 {
		t.Fatalf("step 1: %d, %v", n, err)
	}
	if !bytes.Equal(kr.GetPrimaryKey(), k(1)) || len(kr.GetKeys()) != 2 {
		t.Fatalf("step 1: primary %x, %d keys", kr.GetPrimaryKey(), len(kr.GetKeys()))
	}
	// Step 2: the new key moves first: it encrypts.
	if err := os.WriteFile(path, []byte(enc(k(2))+"\n"+enc(k(1))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadGossipKeys(kr, path); err != nil || !bytes.Equal(kr.GetPrimaryKey(), k(2)) {
		t.Fatalf("step 2: primary %x, %v", kr.GetPrimaryKey(), err)
	}
	// Step 3: the old key is removed.
	if err := os.WriteFile(path, []byte(enc(k(2))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadGossipKeys(kr, path); err != nil || len(kr.GetKeys()) != 1 || !bytes.Equal(kr.GetKeys()[0], k(2)) {
		t.Fatalf("step 3: keys %x, %v", kr.GetKeys(), err)
	}
	// A broken file changes nothing.
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reloadGossipKeys(kr, path); err == nil || len(kr.GetKeys()) != 1 {
		t.Fatalf("garbage: keys %x, %v", kr.GetKeys(), err)
	}
	if _, err := reloadGossipKeys(nil, path); err == nil {
		t.Fatal("no keyring: want an error")
	}
}
