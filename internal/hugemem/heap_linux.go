package hugemem

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/mce-engine/mce/internal/procfs"
)

// MinHeapLimit is the smallest memory limit (GOMEMLIMIT) under which
// AdviseHeap asks for huge pages: a huge page is 2 MiB of RSS however
// little of it the heap uses, and under a small limit (a cluster's share
// of a small --ram-limit) that rounding weighs more than the faults saved.
const MinHeapLimit = 1 << 30

// heapProbe returns a heap object whose address says where the Go heap
// is (made at run time: a package variable's initial value may be laid
// out in the binary instead).
var heapProbe = sync.OnceValue(func() *[64]byte { return new([64]byte) })

// AdviseHeap asks the kernel to back the Go heap's memory with transparent
// huge pages (MADV_HUGEPAGE), as Arena does for its regions: the Go
// runtime does not ask for them, and where THP is set to "madvise" (the
// usual default) every 4 KiB of a growing heap is a page fault when first
// touched, about 11 µs each on a 2-core VM, against a third of a µs per
// 4 KiB for a 2 MiB page.
//
// The advice holds for the heap's mappings as they are now; the runtime
// maps more as the heap grows, so callers call again at points where it
// has grown (a cluster: at every task). With reserve > 0 it first makes
// the heap map reserve bytes more, never touched (RSS does not grow), so
// that the heap grows into advised memory: it allocates them, lets them go,
// collects them and gives them back to the OS.
//
// The heap is found as the anonymous mappings around the address of a
// heap object, contiguous with it; thread stacks and other mappings are
// left alone. It returns the bytes advised now; 0 where the kernel has no
// THP, the advice fails, DisableEnv is set or the memory limit is under
// MinHeapLimit, and for a call without a reserve when the runtime mapped
// nothing since the last advice.
func AdviseHeap(reserve int64) int64 {
	limit := debug.SetMemoryLimit(-1)
	if Disabled() || !thpAvailable() || limit < MinHeapLimit {
		return 0
	}
	// Memory the heap has mapped and not given back counts against the
	// runtime's memory limit until its scavenger returns it: keep the
	// reserve a small part of the limit. Where the kernel counts every
	// mapping against a commit limit (overcommit_memory 2), reserve
	// nothing: a heap that cannot map memory is a crash.
	reserve = min(reserve, limit/4)
	if reserve > 0 && strictCommit() {
		reserve = 0
	}
	if reserve > 0 {
		// With the collector off while the reserve is made, one cycle
		// frees it: the allocation would otherwise start a cycle of its
		// own, which the collection below waits out before it runs
		// another (1.7 ms of a cluster's start).
		//
		// The freed reserve is then given back to the OS at once
		// (FreeOSMemory collects, then returns every free page), not left
		// to the background scavenger: the runtime zeroes memory it has
		// handed out before, when it hands it out again, but not memory
		// it got back from the OS, and it counts the reserve as handed
		// out. Left as it was, every big allocation the heap later made
		// there was zeroed whole at once, capacity it would never use
		// included (a 64 MiB make: 0.15 ms and no RSS, against 195 ms and
		// 64 MiB of RSS).
		pct := debug.SetGCPercent(-1)
		func() {
			b := make([]byte, reserve)
			runtime.KeepAlive(b)
		}()
		debug.SetGCPercent(pct)
		debug.FreeOSMemory()
	}
	mapped, known := mappedBytes()
	if reserve == 0 && known && mapped <= advisedAt.Load() {
		// The runtime mapped nothing since the last advice: no new heap
		// mapping to advise. (Reading /proc/self/maps at every task was
		// a twentieth of a small file's time.)
		return 0
	}
	vmas, err := procfs.Mappings()
	if err != nil {
		return 0
	}
	at := uintptr(unsafe.Pointer(heapProbe()))
	i := slices.IndexFunc(vmas, func(v procfs.Mapping) bool { return v.Start <= at && at < v.End })
	if i < 0 {
		return 0
	}
	lo, hi := i, i
	for lo > 0 && vmas[lo-1].Anon && vmas[lo-1].End == vmas[lo].Start {
		lo--
	}
	for hi+1 < len(vmas) && vmas[hi+1].Anon && vmas[hi+1].Start == vmas[hi].End {
		hi++
	}
	if known {
		advisedAt.Store(mapped)
	}
	// A mapping advised before is advised again: the kernel only sets its
	// flag, which it has.
	var n int64
	for _, v := range vmas[lo : hi+1] {
		if !v.RW || v.End-v.Start < 2*hugePage {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, v.Start, v.End-v.Start, syscall.MADV_HUGEPAGE); e != 0 {
			return n
		}
		n += int64(v.End - v.Start)
	}
	return n
}

// advisedAt is mappedBytes when the heap was last advised.
var advisedAt atomic.Uint64

// mappedBytes returns the memory the Go runtime has mapped read-write,
// which grows when the heap maps more; ok is false where the runtime
// does not tell.
func mappedBytes() (n uint64, ok bool) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return s[0].Value.Uint64(), true
}

// thpAvailable reports whether the kernel has transparent huge pages and
// they are not set to "never" (read once: a cluster asks at every task).
var thpAvailable = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !bytes.Contains(b, []byte("[never]"))
})

// strictCommit reports whether the kernel refuses mappings past its
// commit limit (vm.overcommit_memory = 2).
func strictCommit() bool {
	b, err := os.ReadFile("/proc/sys/vm/overcommit_memory")
	return err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("2"))
}
