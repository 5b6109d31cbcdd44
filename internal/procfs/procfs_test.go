package procfs

import (
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
