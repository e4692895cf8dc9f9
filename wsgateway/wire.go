package wsgateway

// The gateway writes its WebSocket data frames itself rather than through gorilla: a server's
// text frame is a fixed header (FIN + opcode 1, then the payload length in 7, 16 or 64 bits;
// servers never mask) followed by the payload. Building the bytes once per broadcast lets a
// fan-out writer hand the kernel one shared slice per socket (writers.go).

// maxWireHeader is the longest text frame header: 2 bytes plus a 64-bit length.
const maxWireHeader = 10

// appendTextHeader appends the header of an unmasked, final text frame of n payload bytes.
func appendTextHeader(dst []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(dst, finText, byte(n))
	case n <= 0xffff:
		return append(dst, finText, 126, byte(n>>8), byte(n))
	default:
		u := uint64(n)
		return append(dst, finText, 127,
			byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
}

// appendText appends payload as one text frame, header included.
func appendText(dst, payload []byte) []byte {
	return append(appendTextHeader(dst, len(payload)), payload...)
}

// newSharedFrame makes the shared frame of an encoded text: with wire, the text as a
// WebSocket frame, unless the serializer is SSE's (which sends the text itself). data and wire
// share one allocation.
func newSharedFrame(text []byte, v protoVersion) *sharedFrame {
	if v == vsnSSE {
		return &sharedFrame{data: text}
	}
	wire := appendText(make([]byte, 0, maxWireHeader+len(text)), text)
	return &sharedFrame{data: wire[len(wire)-len(text):], wire: wire}
}
