package procfs

import (
	"os"
	"runtime"
	"slices"
	"testing"
)

// TestRSS touches 64 MiB of anonymous memory: the peak RSS grows by it,
// the file-backed part (the executable's pages, which count from the
// start) does not.
func TestRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	figures := []struct {
		name  string
		read  func() int64
		grows bool
	}{{"PeakRSS", PeakRSS, true}, {"RSS", RSS, true}, {"FileRSS", FileRSS, false}}
	before := make([]int64, len(figures))
	for i, f := range figures {
		if before[i] = f.read(); before[i] <= 0 {
			t.Fatalf("%s = %d", f.name, before[i])
		}
	}
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	for i, f := range figures {
		after := f.read()
		if grew := after >= before[i]+32<<20; grew != f.grows || after < before[i]-16<<20 {
			t.Errorf("%s %d MiB after touching 64 MiB, %d MiB before", f.name, after>>20, before[i]>>20)
		}
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

func TestParseMaps(t *testing.T) {
	maps := `00400000-004ac000 r-xp 00000000 fe:00 10266263                           /usr/bin/mce
0059a000-005d0000 rw-p 00000000 00:00 0 
20f09c000000-20f09dc00000 ---p 00000000 00:00 0 
20f09dc00000-20f0a4400000 rw-p 00000000 00:00 0 
7f5223e00000-7f5237fe1000 rw-p 00000000 00:00 0                          [heap]
bad line
7ffd8fcfc000-7ffd8fd1d000 rw-p 00000000 00:00 0                          [stack]
`
	want := []Mapping{
		{Start: 0x400000, End: 0x4ac000},
		{Start: 0x59a000, End: 0x5d0000, RW: true, Anon: true},
		{Start: 0x20f09c000000, End: 0x20f09dc00000, Anon: true},
		{Start: 0x20f09dc00000, End: 0x20f0a4400000, RW: true, Anon: true},
		{Start: 0x7f5223e00000, End: 0x7f5237fe1000, RW: true},
		{Start: 0x7ffd8fcfc000, End: 0x7ffd8fd1d000, RW: true},
	}
	if got := parseMaps([]byte(maps)); !slices.Equal(got, want) {
		t.Errorf("parseMaps:\n got %+v\nwant %+v", got, want)
	}
}
