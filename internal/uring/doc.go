// Package uring is the smallest io_uring the gateway's fan-out needs: one ring per writer
// goroutine, through which a batch of non-blocking sends to many sockets is made with one
// system call instead of one write(2) each.
//
// Why: on the virtual machines where gateways run, a system call costs about 1 µs of entry
// and exit (page-table isolation), and a loopback write wakes the reader's CPU once per call.
// Handing the kernel 32 sends at a time took 12-25% off the CPU of one frame to each of 2,000
// loopback sockets (BENCHMARKS.md, "Fan-out through io_uring, and the poller that held a P").
//
// Only IORING_OP_SEND is used, with MSG_DONTWAIT on sockets the Go runtime already made
// non-blocking, so every send completes during the call that submits it, as write(2) would:
// with the bytes the kernel took (maybe fewer than asked), -EAGAIN when the socket's buffer
// is full, or another -errno. Nothing is left in flight when Send returns.
//
// Where the kernel has no io_uring or refuses it (kernel.io_uring_disabled, or a container's
// seccomp profile), New returns an error and the caller writes with write(2) as before. No Go
// io_uring library could be fetched for this project, so the few system calls are made here
// with golang.org/x/sys/unix.
package uring
