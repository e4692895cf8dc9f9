package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// ParseKeyFile reads secret keys from the contents of a key file: one key per non-empty line, in
// standard base64 or hex, each 16, 24 or 32 bytes once decoded; lines starting with '#' are
// comments. The first key is the primary (used to encrypt); the others are only accepted when
// decrypting, which is how a key is rotated: add the new key second on every node, then move it
// first, then remove the old one. A file of exactly 16, 24 or 32 bytes that are not all printable text is one raw key.
// Errors wrap ErrBadKey and name the line.
func ParseKeyFile(data []byte) ([][]byte, error) {
	if n := len(data); (n == 16 || n == 24 || n == 32) && !isText(data) {
		return [][]byte{bytes.Clone(data)}, nil
	}
	var keys [][]byte
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, err := decodeKey(string(line))
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadKey, i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key in file", ErrBadKey)
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	ok := func(k []byte) bool { return len(k) == 16 || len(k) == 24 || len(k) == 32 }
	if k, err := hex.DecodeString(s); err == nil && ok(k) {
		return k, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("neither hex nor base64")
	}
	if !ok(k) {
		return nil, fmt.Errorf("%d bytes, want 16, 24 or 32", len(k))
	}
	return k, nil
}

// isText reports whether b is printable ASCII or whitespace (then it is parsed as encoded keys,
// not as one raw key).
func isText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
