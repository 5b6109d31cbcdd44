package hugemem

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/mce-engine/mce/internal/procfs"
)

// TestAdviseHeap: the heap's mapping gets the huge-page flag ("hg" in
// /proc/self/smaps), a mapping elsewhere (as a thread's stack) does not,
// and DisableEnv turns it off.
func TestAdviseHeap(t *testing.T) {
	if !thpAvailable() {
		t.Skip("no transparent huge pages here")
	}
	t.Run("disabled", func(t *testing.T) {
		t.Setenv(DisableEnv, "1")
		if n := AdviseHeap(8 << 20); n != 0 {
			t.Errorf("AdviseHeap with %s set advised %d bytes", DisableEnv, n)
		}
	})
	t.Run("small limit", func(t *testing.T) {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(MinHeapLimit - 1))
		if n := AdviseHeap(8 << 20); n != 0 {
			t.Errorf("AdviseHeap under a memory limit below MinHeapLimit advised %d bytes", n)
		}
	})
	other, err := syscall.Mmap(-1, 0, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(other)
	if n := AdviseHeap(16 << 20); n < 16<<20 {
		t.Errorf("AdviseHeap(16 MiB) advised %d bytes, want at least the reserve", n)
	}
	if f := vmFlags(t, uintptr(unsafe.Pointer(heapProbe()))); !slices.Contains(f, "hg") {
		t.Errorf("the heap's mapping has flags %v, want hg", f)
	}
	if f := vmFlags(t, uintptr(unsafe.Pointer(&other[0]))); slices.Contains(f, "hg") {
		t.Errorf("a mapping apart from the heap was advised too: flags %v", f)
	}
}

// vmFlags returns the VmFlags of the mapping that holds addr.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if f := strings.Fields(l); len(f) > 1 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			lo, hi, _ := strings.Cut(f[0], "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(s) <= addr && addr < uintptr(e)
			continue
		}
		if in && strings.HasPrefix(l, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(l, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

// TestAdviseHeap_reserveStaysLazy: the memory the reserve made the heap map
// is not zeroed when the heap hands it out again, so a big allocation whose
// capacity is not used stays out of RSS, as it does in a heap that never
// had a reserve (the runtime zeroes reused memory, but not memory the OS
// gave back).
//
// It checks in a fresh process, as a cluster makes its reserve when it
// starts, up to three times: on a loaded machine (the suite's packages
// tested at once) about one process in a few dozen saw the whole
// allocation in RSS, where a reserve not given back puts it there in every
// process.
func TestAdviseHeap_reserveStaysLazy(t *testing.T) {
	if os.Getenv(lazyChildEnv) != "" {
		checkReserveStaysLazy(t)
		return
	}
	var fails []string
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAdviseHeap_reserveStaysLazy$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), lazyChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err == nil {
			if i := bytes.Index(out, []byte("--- SKIP")); i >= 0 {
				t.Skipf("in a fresh process: %s", bytes.TrimSpace(out[i:]))
			}
			return
		}
		fails = append(fails, string(bytes.TrimSpace(out)))
	}
	t.Errorf("failed in three fresh processes:\n%s", strings.Join(fails, "\n"))
}

// lazyChildEnv marks the process TestAdviseHeap_reserveStaysLazy starts.
const lazyChildEnv = "MCE_HUGEMEM_LAZY_CHILD"

func checkReserveStaysLazy(t *testing.T) {
	if !thpAvailable() {
		t.Skip("no transparent huge pages here")
	}
	if AdviseHeap(256<<20) == 0 {
		t.Skip("nothing advised here")
	}
	before := procfs.RSS()
	if before == 0 {
		t.Skip("no VmRSS here")
	}
	b := make([]byte, 0, 128<<20)
	grew := procfs.RSS() - before
	runtime.KeepAlive(b)
	if grew > 32<<20 {
		t.Errorf("a 128 MiB allocation, unused, grew RSS by %d MiB: the reserve's memory was zeroed again", grew>>20)
	}
}

// TestAdviseHeap_onlyWhatIsNew: a call without a reserve reads the
// mappings only when the runtime mapped more since the last advice.
func TestAdviseHeap_onlyWhatIsNew(t *testing.T) {
	if !thpAvailable() {
		t.Skip("no transparent huge pages here")
	}
	// Some pair of calls with nothing allocated between them advises
	// nothing the second time (the runtime may map a little of its own
	// now and then, hence three tries).
	skipped := false
	for range 3 {
		AdviseHeap(0)
		if AdviseHeap(0) == 0 {
			skipped = true
			break
		}
	}
	if !skipped {
		t.Error("AdviseHeap(0) advised again every time with nothing mapped in between")
	}
	// More than the heap has mapped: the runtime must map more, which
	// the next call advises.
	mapped, ok := mappedBytes()
	if !ok {
		t.Skip("the runtime does not tell what it mapped")
	}
	b := make([]byte, 0, mapped+64<<20)
	if n := AdviseHeap(0); n == 0 {
		t.Errorf("the heap mapped %d MiB more and AdviseHeap(0) advised nothing", cap(b)>>20)
	}
	runtime.KeepAlive(b)
}
