package wsgateway

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// procSample is this process's resource use at one moment. The fan-out benchmark runs its
// clients in a child process, so the CPU time, syscalls and allocations between two samples
// are the server's own: figures that, unlike latency, hardly depend on what else the machine
// is running.
type procSample struct {
	cpu        time.Duration // user + system CPU time
	writes     uint64        // write-type syscalls (write, writev, ...): syscw of /proc/self/io
	mallocs    uint64        // heap objects allocated
	allocBytes uint64        // heap bytes allocated
	heap       uint64        // HeapInuse (after a GC when sampled with gc)
	stack      uint64        // StackInuse: goroutine stacks
	rss        uint64        // resident set, bytes (VmRSS of /proc/self/status)
	goroutines int
}

// sampleProc reads a procSample; with gc it collects first, so that heap is what is live.
func sampleProc(gc bool) procSample {
	if gc {
		runtime.GC()
	}
	var s procSample
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.mallocs, s.allocBytes, s.heap, s.stack = m.Mallocs, m.TotalAlloc, m.HeapInuse, m.StackInuse
	s.goroutines = runtime.NumGoroutine()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.writes = procField("/proc/self/io", "syscw:")
	s.rss = procField("/proc/self/status", "VmRSS:") * 1024 // in kB there
	return s
}

// procField returns the first number after prefix in a /proc file (0 when absent).
func procField(path, prefix string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(prefix))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseUint(string(f[0]), 10, 64)
		return n
	}
	return 0
}

// reportIdle reports the server's memory (heap and stacks; stacks alone; RSS) and goroutines per idle connection, between before
// (no connection) and idle (conns connections open and idle), both sampled with gc.
func reportIdle(b *testing.B, before, idle procSample, conns int) {
	n := float64(conns)
	diff := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / n }
	b.ReportMetric(diff(idle.heap+idle.stack, before.heap+before.stack), "server-B/idle-conn")
	b.ReportMetric(diff(idle.stack, before.stack), "server-stack-B/idle-conn")
	b.ReportMetric(diff(idle.rss, before.rss), "server-RSS-B/idle-conn")
	b.ReportMetric(float64(idle.goroutines-before.goroutines)/n, "goroutines/idle-conn")
}

// reportPerFrame reports the server's costs between from and to per frame it wrote.
func reportPerFrame(b *testing.B, from, to procSample, frames float64) {
	if frames <= 0 {
		return
	}
	b.ReportMetric(float64(to.cpu-from.cpu)/float64(time.Microsecond)/frames, "cpu-us/frame")
	b.ReportMetric(float64(to.writes-from.writes)/frames, "writes/frame")
	b.ReportMetric(float64(to.mallocs-from.mallocs)/frames, "allocs/frame")
	b.ReportMetric(float64(to.allocBytes-from.allocBytes)/frames, "B/frame")
}
