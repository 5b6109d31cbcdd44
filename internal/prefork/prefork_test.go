package prefork

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWorkerArgs(t *testing.T) {
	worker := func(level string) []string {
		return []string{"--log-format", "json", "--log-level", level, "worker"}
	}
	for _, tc := range []struct {
		args []string
		want []string // nil: no process
	}{
		{[]string{"run", "data/"}, worker("info")},
		{[]string{"reduce", "--store", "s"}, worker("info")},
		{[]string{"--log-level", "debug", "reduce", "--store", "s", "--across-files"}, worker("debug")},
		{[]string{"reduce", "--store", "s", "--features", "f.go"}, nil},
		{[]string{"reduce", "--resume", "runs/job0"}, nil},
		{[]string{"reduce", "--help"}, nil},
		{[]string{"partition", "data/", "--out", "s"}, nil},
		{[]string{"run", "a.csv", "--clusters", "3,2,1", "--out", "o"}, worker("info")},
		{[]string{"--log-level", "debug", "run", "data/"}, worker("debug")},
		{[]string{"--log-level=warn", "--log-format", "json", "run", "data/"}, worker("warn")},
		{[]string{"-log-format=text", "run", "x"}, worker("info")},
		{[]string{"run", "--features-source", "/f.go", "data/"}, worker("info")}, // a features binary's run
		{[]string{"run", "--", "--features"}, worker("info")},                    // a file named --features
		{[]string{"run", "data/", "--features", "f.go"}, nil},                    // another binary runs it
		{[]string{"run", "--features=f.go", "data/"}, nil},
		{[]string{"run", "--resume", "runs/job0"}, nil},
		{[]string{"run", "-h"}, nil},
		{[]string{"run", "--help"}, nil},
		{[]string{"worker"}, nil},
		{[]string{"--log-level"}, nil},
		{[]string{"--version", "run"}, nil},
		{[]string{"-test.run=TestX", "run"}, nil}, // a test binary
		{nil, nil},
	} {
		got, cmd, ok := WorkerArgs(tc.args)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) || ok && !slices.Contains(tc.args, cmd) {
			t.Errorf("WorkerArgs(%q) = %q, %q, %v; want %q", tc.args, got, cmd, ok, tc.want)
		}
	}
}

func TestCommandEnv(t *testing.T) {
	unset := func(string) string { return "" }
	set := func(k string) string {
		if k == "MALLOC_ARENA_MAX" {
			return "4"
		}
		return ""
	}
	if got := CommandEnv("reduce", unset); !slices.Equal(got, []string{MallocArenas}) {
		t.Errorf("reduce: %q, want %q", got, MallocArenas)
	}
	if got := CommandEnv("reduce", set); got != nil {
		t.Errorf("reduce with MALLOC_ARENA_MAX set: %q, want nothing", got)
	}
	if got := CommandEnv("run", unset); got != nil {
		t.Errorf("run: %q, want nothing", got)
	}
}

// TestTake starts real processes as init does and takes or kills them.
func TestTake(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("prefork starts nothing here")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	t.Setenv("GOMAXPROCS", "7")
	t.Setenv("GOMEMLIMIT", "1GiB")
	startEarly := func(env ...string) *Process {
		t.Helper()
		p := start(sleep, []string{"30"}, env)
		if p == nil {
			t.Fatal("start failed")
		}
		mu.Lock()
		early = p
		mu.Unlock()
		return p
	}
	gone := func(p *Process) {
		t.Helper()
		if err := syscall.Kill(p.Proc.Pid, 0); err != syscall.ESRCH {
			t.Errorf("process %d: kill 0 = %v, want it gone (ESRCH)", p.Proc.Pid, err)
		}
	}

	p := startEarly()
	env := environ(t, p.Proc.Pid)
	vars := strings.Split(string(bytes.TrimRight(env, "\x00")), "\x00")
	if !slices.Contains(vars, ChildEnv+"=1") || slices.ContainsFunc(vars, func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "GOMEMLIMIT=")
	}) {
		t.Errorf("the process's environment: %q; want %s=1 and no GOMAXPROCS or GOMEMLIMIT", vars, ChildEnv)
	}
	if pgid, err := syscall.Getpgid(p.Proc.Pid); err != nil || pgid != p.Proc.Pid {
		t.Errorf("process group %d (%v), want its own (%d)", pgid, err, p.Proc.Pid)
	}
	if got := Take(sleep, []string{"30"}, nil); got != p {
		t.Fatalf("Take of the same command = %v, want the process", got)
	}
	if got := Take(sleep, []string{"30"}, nil); got != nil {
		t.Fatalf("a second Take = %v, want nil", got)
	}
	p.kill()
	gone(p)

	for _, tc := range []struct {
		name      string
		exe       string
		args, env []string
	}{
		{"another executable", "/bin/true", []string{"30"}, nil},
		{"other arguments", sleep, []string{"31"}, nil},
		{"an environment of its own", sleep, []string{"30"}, []string{"MALLOC_ARENA_MAX=2"}},
	} {
		p := startEarly()
		if got := Take(tc.exe, tc.args, tc.env); got != nil {
			t.Errorf("%s: Take = %v, want nil", tc.name, got)
		}
		gone(p)
	}
	// A process started with its command's environment (mce reduce's) is
	// taken with that environment only.
	p = startEarly(MallocArenas)
	env = environ(t, p.Proc.Pid)
	if !slices.Contains(strings.Split(string(env), "\x00"), MallocArenas) {
		t.Errorf("the process's environment lacks %s: %q", MallocArenas, env)
	}
	if got := Take(sleep, []string{"30"}, nil); got != nil {
		t.Errorf("Take without its environment = %v, want nil", got)
	}
	gone(p)
	p = startEarly(MallocArenas)
	if got := Take(sleep, []string{"30"}, []string{MallocArenas}); got != p {
		t.Errorf("Take with its environment = %v, want the process", got)
	}
	p.kill()
	gone(p)

	p = startEarly()
	Discard()
	gone(p)
	Discard() // nothing left: fine
}

func itoa(n int) string { return strconv.Itoa(n) }

// environ reads the environment of process pid once it has one: right
// after the fork, before the exec, /proc shows none.
func environ(t *testing.T, pid int) []byte {
	t.Helper()
	for range 200 {
		env, err := os.ReadFile("/proc/" + itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if len(env) > 0 {
			return env
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d: no environment after 1 s", pid)
	return nil
}

func TestWithoutLimits(t *testing.T) {
	in := []string{"PATH=/bin", "GOMAXPROCS=3", "GOMEMLIMIT=1GiB", ChildEnv + "=1", "GOGC=50", "MY_GOMAXPROCS=2"}
	orig := slices.Clone(in)
	got := WithoutLimits(in)
	if want := []string{"PATH=/bin", "GOGC=50", "MY_GOMAXPROCS=2"}; !slices.Equal(got, want) {
		t.Errorf("WithoutLimits = %q, want %q", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("WithoutLimits changed its input: %q", in)
	}
}
