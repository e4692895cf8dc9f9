package gossip

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSectionsRoundTripAndRefuseMalformed(t *testing.T) {
	for _, c := range []struct{ svc, hc []byte }{
		{nil, nil}, {[]byte("svc"), nil}, {nil, []byte{metaMagic, 1}}, {[]byte("svc"), []byte("hc")},
		{bytes.Repeat([]byte("x"), 300), bytes.Repeat([]byte("y"), 200)},
	} {
		svc, hc, err := decodeSections(encodeSections(c.svc, c.hc))
		require.NoError(t, err)
		require.Equal(t, string(c.svc), string(svc))
		require.Equal(t, string(c.hc), string(hc))
	}
	// An unknown kind is skipped: a later version may add parts.
	svc, hc, err := decodeSections([]byte{sectionMagic, 9, 1, 'z', kindService, 1, 's'})
	require.NoError(t, err)
	require.Equal(t, "s", string(svc))
	require.Nil(t, hc)
	for name, b := range map[string][]byte{
		"no magic":       []byte("svc:a"),
		"past the end":   {sectionMagic, kindService, 5, 'a'},
		"bad length":     {sectionMagic, kindService, 0xff},
		"no length":      {sectionMagic, kindService},
		"the kind twice": {sectionMagic, kindService, 1, 'a', kindService, 1, 'b'},
	} {
		_, _, err := decodeSections(b)
		require.ErrorIs(t, err, ErrBadMeta, name)
	}
	// The largest Headcount meta leaves the service room below memberlist's 512 bytes.
	m := nodeMeta{Epoch: ^uint64(0), Protocol: ProtocolVersion, HTTP: string(bytes.Repeat([]byte("h"), MaxHTTPAddrLen))}.encode()
	require.LessOrEqual(t, 1+2*sectionOverhead+len(m), 512-64)
}

func FuzzDecodeSections(f *testing.F) {
	f.Add(encodeSections([]byte("svc"), []byte("hc")))
	f.Add([]byte{sectionMagic, kindService, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		svc, hc, err := decodeSections(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		svc2, hc2, err := decodeSections(encodeSections(svc, hc))
		if err != nil || !bytes.Equal(svc, svc2) || !bytes.Equal(hc, hc2) {
			t.Fatalf("re-encode: %q %q -> %q %q, %v", svc, hc, svc2, hc2, err)
		}
	})
}
