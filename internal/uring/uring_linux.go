package uring

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's ABI (include/uapi/linux/io_uring.h).
const (
	sysSetup = 425 // io_uring_setup, the same number on every architecture since 5.1
	sysEnter = 426 // io_uring_enter

	setupClamp     = 1 << 4  // IORING_SETUP_CLAMP: fewer entries rather than EINVAL
	setupSubmitAll = 1 << 7  // IORING_SETUP_SUBMIT_ALL (5.18): an SQE's error does not stop the rest
	featSingleMmap = 1 << 0  // IORING_FEAT_SINGLE_MMAP (5.4): one mapping for both rings
	enterGetEvents = 1 << 0  // IORING_ENTER_GETEVENTS
	opSend         = 26      // IORING_OP_SEND (5.6)
	offSQRing      = 0       // IORING_OFF_SQ_RING
	offSQEs        = 1 << 28 // IORING_OFF_SQES
)

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe, 64 bytes, as a send fills it.
type sqe struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, msgFlags uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFdIn    int32
	addr3, pad2   uint64
}

// cqe is struct io_uring_cqe without the big-CQE tail (not asked for).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Ring is one io_uring instance: a submission and a completion queue shared with the
// kernel. It is not safe for concurrent use: one goroutine owns it (the kernel does not mind
// which thread calls, as IORING_SETUP_SINGLE_ISSUER is not set).
type Ring struct {
	fd      int
	rings   []byte // the mapped SQ and CQ rings
	sqeMem  []byte // the mapped SQE array
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []sqe
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    []cqe
	max     int
	broken  error // set when the ring's state can no longer be trusted
}

// New sets up a ring for sends of up to entries sockets per call (rounded up to a power of
// two by the kernel, clamped to its limit). It fails where the kernel has no io_uring or
// refuses it; the error says which.
func New(entries int) (*Ring, error) {
	if entries <= 0 {
		return nil, errors.New("uring: entries must be > 0")
	}
	var p params
	p.flags = setupClamp | setupSubmitAll
	fd, err := setup(uint32(entries), &p)
	if errors.Is(err, unix.EINVAL) { // a kernel older than 5.18: no SUBMIT_ALL
		p = params{flags: setupClamp}
		fd, err = setup(uint32(entries), &p)
	}
	if err != nil {
		return nil, fmt.Errorf("uring: io_uring_setup: %w", err)
	}
	r := &Ring{fd: fd}
	if err := r.mmap(&p); err != nil {
		r.Close()
		return nil, err
	}
	r.max = int(min(p.sqEntries, p.cqEntries))
	return r, nil
}

func setup(entries uint32, p *params) (int, error) {
	fd, _, errno := syscall.Syscall(sysSetup, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func (r *Ring) mmap(p *params) error {
	if p.features&featSingleMmap == 0 {
		return errors.New("uring: the kernel is older than 5.4 (no IORING_FEAT_SINGLE_MMAP)")
	}
	size := max(int(p.sqOff.array)+int(p.sqEntries)*4, int(p.cqOff.cqes)+int(p.cqEntries)*int(unsafe.Sizeof(cqe{})))
	rings, err := unix.Mmap(r.fd, offSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap rings: %w", err)
	}
	r.rings = rings
	sqes, err := unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("uring: mmap SQEs: %w", err)
	}
	r.sqeMem = sqes
	base := unsafe.Pointer(&rings[0])
	u32 := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqHead, r.sqTail, r.sqMask = u32(p.sqOff.head), u32(p.sqOff.tail), *u32(p.sqOff.ringMask)
	r.sqArray = unsafe.Slice(u32(p.sqOff.array), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	r.cqHead, r.cqTail, r.cqMask = u32(p.cqOff.head), u32(p.cqOff.tail), *u32(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	return nil
}

// Max is the most sends one Send makes.
func (r *Ring) Max() int { return r.max }

// Send makes one non-blocking send of bufs[i] to socket fds[i] for every i, all submitted
// with one io_uring_enter, and waits for them all; len(fds) <= Max, len(bufs) and len(res)
// >= len(fds). res[i] is what send(2) would have returned: the bytes the kernel took (maybe
// fewer than len(bufs[i])), or -errno (-EAGAIN: the socket's buffer is full; -EBADF: fds[i]
// is no socket of this process).
//
// The caller keeps every fds[i] open until Send returns (the kernel looks each one up while
// submitting; it holds the file itself from then on). Send returns n = len(fds) and a nil
// error, or the number of sends made (res[:n] is theirs; the rest were not tried) and the
// error that stopped it, after which the ring is not used again.
func (r *Ring) Send(fds []int, bufs [][]byte, res []int32) (int, error) {
	if r.broken != nil {
		return 0, r.broken
	}
	n := len(fds)
	if n == 0 {
		return 0, nil
	}
	if n > r.max {
		return 0, fmt.Errorf("uring: %d sends, more than the ring's %d", n, r.max)
	}
	tail := *r.sqTail // only this goroutine writes it
	for i, fd := range fds {
		idx := (tail + uint32(i)) & r.sqMask
		s := &r.sqes[idx]
		*s = sqe{opcode: opSend, fd: int32(fd), msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL, userData: uint64(i)}
		if len(bufs[i]) > 0 {
			s.addr = uint64(uintptr(unsafe.Pointer(&bufs[i][0])))
			s.len = uint32(len(bufs[i]))
		}
		r.sqArray[idx] = idx
		res[i] = notDone
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(n)) // a release: the kernel reads the SQEs after it

	submitted, completed := 0, 0
	var err error
	for tries := 0; completed < n; tries++ {
		if tries == maxEnters {
			err = fmt.Errorf("uring: %d of %d sends not done after %d calls", n-completed, n, tries)
			break
		}
		toSubmit := n - submitted
		var got uintptr
		var errno syscall.Errno
		if tries == 0 {
			// The sends complete while they are submitted, and the call does not wait for
			// anything (no GETEVENTS): made as a raw system call, it keeps the goroutine's P,
			// as the write(2)s it replaces did. A blocking call of a few hundred µs would have
			// the scheduler hand the P to another thread meanwhile, and the writer would then
			// queue for one on its return: that took 5-27% off a join storm's joins/s. The
			// price: a stop-the-world (GC) waits for the call, a few hundred µs for 32 sends.
			got, _, errno = syscall.RawSyscall6(sysEnter, uintptr(r.fd), uintptr(toSubmit), 0, 0, 0, 0)
		} else {
			// Anything still in flight (never seen): wait for it as a blocking call.
			got, _, errno = syscall.Syscall6(sysEnter, uintptr(r.fd), uintptr(toSubmit), uintptr(n-completed), enterGetEvents, 0, 0)
		}
		switch {
		case errno == 0:
			submitted += int(got)
		case errno == unix.EINTR: // a signal (the runtime's preemption): submitted nothing, or waited
		case errno == unix.EAGAIN || errno == unix.EBUSY: // out of resources for now: completions free them
		default:
			err = fmt.Errorf("uring: io_uring_enter: %w", errno)
		}
		completed += r.reap(res)
		if err != nil {
			break
		}
		if got == 0 && errno == 0 && completed < n && submitted < n {
			err = errors.New("uring: io_uring_enter submitted nothing")
			break
		}
	}
	runtime.KeepAlive(bufs)
	if err != nil {
		// The kernel consumed the SQEs up to its head: take back the rest, so that no later
		// enter sends them, wait for what was submitted, and stop using the ring.
		head := atomic.LoadUint32(r.sqHead)
		submitted = int(head - tail)
		atomic.StoreUint32(r.sqTail, head)
		for completed < submitted {
			_, _, errno := syscall.Syscall6(sysEnter, uintptr(r.fd), 0, uintptr(submitted-completed), enterGetEvents, 0, 0)
			completed += r.reap(res)
			if errno != 0 && errno != unix.EINTR {
				break
			}
		}
		r.broken = err
		return r.made(res[:n]), err
	}
	return n, nil
}

// maxEnters bounds the io_uring_enter calls of one Send (interrupted or short of resources)
// before the ring is given up.
const maxEnters = 1000

// notDone is a send's result before its completion: no errno is this large.
const notDone = math.MinInt32

// made is how many of res's first sends completed, in order: the kernel submits in order, so
// the sends after the first one not completed were not made.
func (r *Ring) made(res []int32) int {
	for i, v := range res {
		if v == notDone {
			return i
		}
	}
	return len(res)
}

// reap takes every completion queued, stores its result, and returns how many there were.
func (r *Ring) reap(res []int32) int {
	head := *r.cqHead // only this goroutine writes it
	tail := atomic.LoadUint32(r.cqTail)
	k := 0
	for ; head != tail; head++ {
		c := &r.cqes[head&r.cqMask]
		if c.userData < uint64(len(res)) {
			res[c.userData] = c.res
		}
		k++
	}
	atomic.StoreUint32(r.cqHead, head)
	return k
}

// Close releases the ring; a second Close does nothing.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	var errs []error
	if r.sqeMem != nil {
		errs = append(errs, unix.Munmap(r.sqeMem))
	}
	if r.rings != nil {
		errs = append(errs, unix.Munmap(r.rings))
	}
	errs = append(errs, unix.Close(r.fd))
	r.fd, r.rings, r.sqeMem = -1, nil, nil
	r.broken = errors.New("uring: closed")
	return errors.Join(errs...)
}
