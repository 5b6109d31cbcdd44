package main_test

import (
	"strconv"
	"strings"
	"testing"
)

// Every mce process, the clusters included, runs the initialisation of
// every package the binary links. initMaxBytes and initMaxAllocs are what
// one package of this module may allocate there (its package-level
// variables): a table or a regexp that is needed by one command only is
// made on first use. Allocations are counted exactly by the runtime, so
// the check does not depend on the machine's speed.
const (
	initMaxBytes  = 16 << 10
	initMaxAllocs = 100
)

// TestE2E_InitAllocations starts the built binary with
// GODEBUG=inittrace=1 and checks what each of this module's packages
// allocates in its initialisation. A bench package that compiled its two
// dozen profile regexps at init allocated 337 KB in 1,912 allocations and
// made every mce process start about 6 ms of CPU slower.
func TestE2E_InitAllocations(t *testing.T) {
	_, stderr, code := mce(t, t.TempDir(), []string{"GODEBUG=inittrace=1"}, "--version")
	if code != 0 {
		t.Fatalf("mce --version: exit %d: %s", code, stderr)
	}
	seen := 0
	for line := range strings.Lines(stderr) {
		// init github.com/mce-engine/mce/bench @22 ms, 1.8 ms clock, 486336 bytes, 2847 allocs
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" || f[8] != "bytes," || f[10] != "allocs" {
			continue
		}
		if !strings.HasPrefix(f[1], "github.com/mce-engine/mce/") {
			continue
		}
		seen++
		bytes, err1 := strconv.Atoi(f[7])
		allocs, err2 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil {
			t.Fatalf("inittrace line %q", line)
		}
		if bytes > initMaxBytes || allocs > initMaxAllocs {
			t.Errorf("%s allocates %d bytes in %d allocations at init, over %d and %d: make what it builds there on first use", f[1], bytes, allocs, initMaxBytes, initMaxAllocs)
		}
	}
	if seen < 5 {
		t.Fatalf("inittrace named %d of this module's packages:\n%s", seen, stderr)
	}
}
