//go:build !linux

package e2e

import (
	"context"
	"net"
)

// nsDial is a plain dial where there are no network namespaces (the netLab tests are Linux only).
func nsDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
