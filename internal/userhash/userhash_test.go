package userhash

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

func TestSum_Golden(t *testing.T) {
	f := func(key string, want uint64) {
		t.Helper()
		if got := Sum([]byte(key)); got != want {
			t.Errorf("Sum(%q) = %#x, want %#x", key, got, want)
		}
	}
	f("", 0xef46db3751d8e999)
	f("GAMS850101AB3", goldenGAMS)
	f("BANCO SANTANDER", goldenBank)
}

// TestSum_StableAcrossProcesses re-runs this test binary as a child and
// checks that it computes the same partitions: the bug Python's randomised
// hash() caused in the original engine.
func TestSum_StableAcrossProcesses(t *testing.T) {
	if os.Getenv("USERHASH_CHILD") == "1" {
		for _, k := range []string{"a", "GAMS850101AB3", "ÑAÑ850101AB3"} {
			os.Stdout.WriteString(strconv.Itoa(Partition([]byte(k), 7)) + "\n")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestSum_StableAcrossProcesses")
	cmd.Env = append(os.Environ(), "USERHASH_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, k := range []string{"a", "GAMS850101AB3", "ÑAÑ850101AB3"} {
		want += strconv.Itoa(Partition([]byte(k), 7)) + "\n"
	}
	if got := string(out); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("child partitions %q, parent %q", got, want)
	}
}

func TestPartition_Range(t *testing.T) {
	for n := 1; n < 20; n++ {
		for i := 0; i < 1000; i++ {
			p := Partition([]byte(strconv.Itoa(i)), n)
			if p < 0 || p >= n {
				t.Fatalf("Partition(%d, %d) = %d", i, n, p)
			}
		}
	}
}

// Golden hashes: if these change, every existing store's sharding changes.
const (
	goldenGAMS = 0xc83d30ae51873ef4
	goldenBank = 0x71bed58941a36ee1
)
