package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestMeasure_PeakRSS(t *testing.T) {
	exe := testExe(t)
	// slack is what the test binary adds to what it allocates.
	slack := int64(60 * mib)
	if raceEnabled {
		slack = 300 * mib
	}
	t.Run("OneChild", func(t *testing.T) {
		s, err := Measure(context.Background(), Command{
			Args: []string{exe},
			Env:  []string{"BENCH_TEST_ALLOC_MIB=100", "BENCH_TEST_HOLD_MS=400"},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The test binary itself is a few MiB; the Go runtime adds little.
		if s.PeakRSSBytes < 100*mib || s.PeakRSSBytes > 100*mib+slack {
			t.Errorf("peak RSS %.1f MiB, want 100 to %d", float64(s.PeakRSSBytes)/mib, (100*mib+slack)/mib)
		}
	})
	t.Run("Tree", func(t *testing.T) {
		// Two grandchildren of 60 MiB each under a shell, alive at the
		// same time: only the sum over the tree reaches 120 MiB; the
		// rusage max RSS alone would say about 60.
		s, err := Measure(context.Background(), Command{
			Args: []string{"sh", "-c", `"$0" & "$0" & wait`, exe},
			Env:  []string{"BENCH_TEST_ALLOC_MIB=60", "BENCH_TEST_HOLD_MS=700"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.PeakRSSBytes < 120*mib || s.PeakRSSBytes > 120*mib+2*slack {
			t.Errorf("peak RSS %.1f MiB, want 120 to %d", float64(s.PeakRSSBytes)/mib, (120*mib+2*slack)/mib)
		}
		if s.Processes < 3 {
			t.Errorf("saw at most %d processes at once, want 3 (shell and two children)", s.Processes)
		}
	})
	t.Run("NotOurs", func(t *testing.T) {
		// A child's ru_maxrss starts at this process's high-water mark at
		// the child's exec. Here this process grows while it starts the
		// child (a goroutine touches 300 MiB, half of it before the start),
		// so that mark passes any reading of our peak taken before the
		// start. The child is a shell that sleeps: a figure near 150 MiB
		// would be ours.
		half, done := make(chan struct{}), make(chan []byte)
		go func() {
			b := make([]byte, 300*mib)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
				if i == len(b)/2 {
					close(half)
				}
			}
			done <- b
		}()
		<-half
		s, err := Measure(context.Background(), Command{Args: []string{"sh", "-c", "sleep 0.2"}})
		b := <-done
		if err != nil {
			t.Fatal(err)
		}
		if s.PeakRSSBytes > 50*mib {
			t.Errorf("peak RSS %.1f MiB of a sleeping shell, want under 50: the test process's own (%d MiB touched)",
				float64(s.PeakRSSBytes)/mib, len(b)/mib)
		}
	})
}

func TestMeasure_CPU(t *testing.T) {
	// The CPU of a grandchild counts: the shell waits for it.
	s, err := Measure(context.Background(), Command{
		Args: []string{"sh", "-c", `"$0"; true`, testExe(t)},
		Env:  []string{"BENCH_TEST_SPIN_MS=400"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU() < 400*time.Millisecond || s.CPU() > 3*time.Second {
		t.Errorf("cpu %v, want the child's 400ms and little more", s.CPU())
	}
	if strings.TrimSpace(s.Stdout) != "true" {
		t.Errorf("stdout %q, want the child's output", s.Stdout)
	}
}

func TestMeasure_Errors(t *testing.T) {
	t.Run("ExitStatus", func(t *testing.T) {
		_, err := Measure(context.Background(), Command{Args: []string{"sh", "-c", "echo first >&2; echo 'the reason' >&2; exit 3"}})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("err %v, want an *ExitError", err)
		}
		if !strings.Contains(err.Error(), "exit status 3: the reason") {
			t.Errorf("error %q does not give the status and the last stderr line", err)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		// The grandchild sleep must die with the group.
		_, err := Measure(ctx, Command{Args: []string{"sh", "-c", "sleep 31.7 & sleep 31.7; wait"}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's error", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("took %v to stop", time.Since(start))
		}
		if out, _ := exec.Command("pgrep", "-f", "^sleep 31.7$").Output(); len(out) > 0 {
			t.Errorf("sleep processes left behind: %s", out)
		}
	})
	t.Run("NoProgram", func(t *testing.T) {
		if _, err := Measure(context.Background(), Command{Args: []string{"/nonexistent/program"}}); err == nil {
			t.Fatal("no error for a missing program")
		}
	})
}

func TestParseStat(t *testing.T) {
	f := func(line string, want procStat, wantErr bool) {
		t.Helper()
		got, err := parseStat([]byte(line))
		if (err != nil) != wantErr {
			t.Fatalf("parseStat(%q): err %v, want error %v", line, err, wantErr)
		}
		if got != want {
			t.Errorf("parseStat(%q) = %+v, want %+v", line, got, want)
		}
	}
	rest := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	// Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime vsize rss ...
	f("42 (mce) S 7 42 42 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 3 0 1000 123456 2560"+rest,
		procStat{pid: 42, ppid: 7, rssPages: 2560}, false)
	f("43 (a (weird) name) R 42 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 2 77"+rest,
		procStat{pid: 43, ppid: 42, rssPages: 77}, false)
	f("44 (short) S 1", procStat{}, true)
	f("garbage", procStat{}, true)
}

func TestDescendants(t *testing.T) {
	parent := map[int]int{1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
	got := descendants(10, parent)
	want := map[int]bool{10: true, 11: true, 12: true, 13: true}
	if len(got) != len(want) {
		t.Fatalf("descendants(10) = %v, want the keys of %v", got, want)
	}
	for _, p := range got {
		if !want[p] {
			t.Errorf("descendants(10) holds %d", p)
		}
	}
}
