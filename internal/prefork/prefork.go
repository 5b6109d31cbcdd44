// Package prefork starts the first cluster process of `mce run` (and of
// `mce reduce`) while the rest of mce initialises.
//
// A Go program initialises every package it links before its main, and
// mce's take about 15 ms (pebble's dependencies, protobuf and prometheus,
// are most of it). `mce run` then parsed its flags and started its first
// cluster about 27 ms after it began, and that cluster went through the
// same start again before it could read a byte. This package imports
// little more than os and syscall, so it initialises among the first,
// and its init starts the cluster process about 11 ms after mce began,
// when the command line is a `mce run` (or a features binary's run) or a
// `mce reduce` that will start one (a reduce's with the two malloc arenas
// its clusters get, MallocArenas). engine.Prestart takes it (Take) as its first cluster's
// process and sends it its CPUs and memory limit, which were not known
// when it started; a process nothing takes is killed (Take, Discard), and
// it dies with mce in any case (PR_SET_PDEATHSIG, as engine's clusters).
//
// On a 2-core VM a run of one tiny file took 11 ms less (88 against 77
// ms); two processes that start at once there slow each other (two starts
// take 1.47 times one), and a run of 300 MB gained 5-15 ms of its 0.7 s;
// a reduce of a tiny store took 85 against 91 ms (medians of 40
// interleaved rounds), of the bench's 300 MB store 0.625 against 0.630 s.
//
// DisableEnv turns it off. It starts nothing on systems other than Linux.
package prefork

import (
	"os"
	"slices"
	"strings"
	"sync"
)

// DisableEnv, set to anything, keeps mce from starting a cluster process
// before its command line is parsed.
const DisableEnv = "MCE_NO_PREFORK"

// ChildEnv is set in the environment of a process this package started.
const ChildEnv = "MCE_PREFORKED"

// Child reports whether this process was started by this package: its
// environment has no GOMAXPROCS or GOMEMLIMIT of its cluster, which it
// takes from the first message of its parent instead (engine's "limits").
func Child() bool { return os.Getenv(ChildEnv) != "" }

// Process is a cluster process started by this package, with the
// parent's ends of its standard streams.
type Process struct {
	Proc   *os.Process
	Exe    string   // the executable
	Args   []string // its arguments, after the executable
	Env    []string // what its command adds to the cluster's environment (CommandEnv)
	Stdin  *os.File // write end of its stdin
	Stdout *os.File // read end of its stdout
	Stderr *os.File // read end of its stderr
}

// kill kills the process's group and reaps it, and closes its streams.
func (p *Process) kill() {
	killGroup(p.Proc.Pid)
	p.Stdin.Close()
	p.Stdout.Close()
	p.Stderr.Close()
	_, _ = p.Proc.Wait()
}

var (
	mu    sync.Mutex
	early *Process
)

// Take returns the process started at initialisation when it runs exe
// with args and was started with env beyond this process's own
// environment, and gives it to the caller; otherwise, or after the first
// call, it returns nil and kills the process, if there is one.
func Take(exe string, args, env []string) *Process {
	mu.Lock()
	defer mu.Unlock()
	p := early
	early = nil
	if p == nil {
		return nil
	}
	if p.Exe != exe || !slices.Equal(p.Args, args) || !slices.Equal(p.Env, env) {
		p.kill()
		return nil
	}
	return p
}

// Discard kills the process started at initialisation unless it was
// taken.
func Discard() { Take("", nil, nil) }

// ClusterArgs returns the arguments (after the executable) of a cluster
// process of `mce run` whose parent logs at level: what `mce run` gives
// engine.Options.WorkerArgs, and what this package starts.
func ClusterArgs(level string) []string {
	return []string{"--log-format", "json", "--log-level", level, "worker"}
}

// MallocArenas is what `mce reduce` adds to its clusters' environment
// when the variable is not set: pebble allocates its blocks with C
// malloc from whichever threads read, and glibc then keeps up to 8 arenas
// per CPU of freed blocks, tens of MiB that grow with the run; two keep a
// cluster's C memory near the cache size.
const MallocArenas = "MALLOC_ARENA_MAX=2"

// CommandEnv returns what the command cmd ("run", "reduce") adds to its
// clusters' environment, given this process's getenv.
func CommandEnv(cmd string, getenv func(string) string) []string {
	if cmd == "reduce" && getenv("MALLOC_ARENA_MAX") == "" {
		return []string{MallocArenas}
	}
	return nil
}

// WorkerArgs returns the arguments of the cluster process that the
// command line args (without the program name) will start, the command
// that starts it, and whether it starts one that can be started now:
// `mce [--log-level L] [--log-format F] run|reduce ...` without
// --features (the build comes first, then another binary runs), --resume
// (which may do the same) or help.
func WorkerArgs(args []string) ([]string, string, bool) {
	level := "info"
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "log-level" && name != "log-format" {
			return nil, "", false
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, "", false
			}
			i++
			value = args[i]
		}
		if name == "log-level" {
			level = value
		}
	}
	if i >= len(args) || (args[i] != "run" && args[i] != "reduce") {
		return nil, "", false
	}
	for _, a := range args[i+1:] {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "features" || name == "resume" || name == "help" || name == "h") {
			return nil, "", false
		}
	}
	return ClusterArgs(level), args[i], true
}

// WithoutLimits returns a copy of env without the variables that set a
// cluster's CPUs and memory (GOMAXPROCS, GOMEMLIMIT) or say that this
// package started it (ChildEnv): engine sets its own for each cluster.
func WithoutLimits(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, ChildEnv+"=")
	})
}

// workerEnv is this process's environment without the cluster settings
// (the cluster gets its own in its parent's first message), and with
// ChildEnv.
func workerEnv() []string {
	return append(WithoutLimits(os.Environ()), ChildEnv+"=1")
}
