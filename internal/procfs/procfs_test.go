package procfs

import (
	"os"
	"runtime"
	"testing"
)

func TestPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	before := PeakRSS()
	if before <= 0 {
		t.Fatalf("PeakRSS = %d", before)
	}
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	if after := PeakRSS(); after < before+32<<20 {
		t.Errorf("PeakRSS %d MiB after touching 64 MiB, %d MiB before", after>>20, before>>20)
	}
	runtime.KeepAlive(b)
}

// TestFileRSS checks that the executable's resident pages count, and
// that touching anonymous memory does not.
func TestFileRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	before := FileRSS()
	if before <= 0 {
		t.Fatalf("FileRSS = %d, want the executable's pages", before)
	}
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	if after := FileRSS(); after > before+16<<20 {
		t.Errorf("FileRSS %d MiB after touching 64 MiB of anonymous memory, %d MiB before", after>>20, before>>20)
	}
	runtime.KeepAlive(b)
}

func TestPSS(t *testing.T) {
	pss, err := PSS(os.Getpid())
	if err != nil || pss <= 0 || pss > PeakRSS()+PeakRSS()/4 {
		t.Errorf("PSS = %d, %v (peak RSS %d)", pss, err, PeakRSS())
	}
	if _, err := PSS(1 << 30); err == nil {
		t.Error("PSS of no process: no error")
	}
}

func TestOwnCgroup(t *testing.T) {
	cg, err := OwnCgroup()
	if err != nil {
		t.Skipf("no memory cgroup here: %v", err)
	}
	ws, err := cg.WorkingSet()
	if err != nil || ws <= 0 {
		t.Errorf("%s: working set %d, %v", cg, ws, err)
	}
}
