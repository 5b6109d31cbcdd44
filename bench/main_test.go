package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the processes the tests
// measure: "_floor ..." runs the floor as mcebench would, and
// BENCH_TEST_ALLOC_MIB=n makes it allocate and touch n MiB, hold them for
// BENCH_TEST_HOLD_MS and exit; BENCH_TEST_SPIN_MS=n burns n ms of CPU.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == floorCommand {
		os.Exit(floorMain(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if v := os.Getenv("BENCH_TEST_ALLOC_MIB"); v != "" {
		os.Exit(allocChild(v))
	}
	if v := os.Getenv("BENCH_TEST_SPIN_MS"); v != "" {
		// Spin until this process has used that much CPU, however
		// loaded the machine is.
		ms, _ := strconv.Atoi(v)
		x := 0
		for cpuTime() < time.Duration(ms)*time.Millisecond {
			for range 100000 {
				x++
			}
		}
		fmt.Println(x > 0)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func allocChild(mib string) int {
	n, err := strconv.Atoi(mib)
	if err != nil {
		return 2
	}
	buf := make([]byte, n<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // touch every page, so that it is resident
	}
	hold, _ := strconv.Atoi(os.Getenv("BENCH_TEST_HOLD_MS"))
	time.Sleep(time.Duration(hold) * time.Millisecond)
	if buf[len(buf)-4096] != 1 {
		return 3
	}
	return 0
}
