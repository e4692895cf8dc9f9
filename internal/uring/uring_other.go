//go:build !linux

package uring

import "errors"

// Ring is not available on this system.
type Ring struct{}

// New returns ErrUnsupported: io_uring is Linux's.
func New(entries int) (*Ring, error) { return nil, errors.ErrUnsupported }

// Max is never called on a nil Ring.
func (r *Ring) Max() int { return 0 }

// Send is never called: New never returns a Ring.
func (r *Ring) Send(fds []int, bufs [][]byte, res []int32) (int, error) {
	return 0, errors.ErrUnsupported
}

// Close does nothing.
func (r *Ring) Close() error { return nil }
