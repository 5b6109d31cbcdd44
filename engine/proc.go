package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/mce-engine/mce/internal/prefork"
)

// proc is one running cluster process.
type proc struct {
	cluster, gen int
	pid          int
	stdin        *os.File
	enc          *json.Encoder
	// logger gets the process's stderr (relog); a prestarted process's
	// is replaced when Run adopts it (adoptLogger).
	logger atomic.Pointer[slog.Logger]
}

// procEvent is what a cluster process reports to the parent's loop: a
// protocol message, or (last of all) its exit.
type procEvent struct {
	cluster, gen int
	msg          *fromWorker
	exited       bool
	exitErr      error
	tail         []string // last stderr lines, for a crash's message
}

type procSpec struct {
	cluster, gen int
	cpus         int
	memLimit     int64
	exe          string
	args         []string
	env          []string
	logger       *slog.Logger
}

// stderrTailLines is how many stderr lines of a cluster are kept to explain
// a crash.
const stderrTailLines = 20

// startProc starts a cluster process and the goroutines that read its
// stdout and stderr; events get every message and finally its exit.
//
// The child gets its own process group (so that killing the group leaves
// nothing behind) and, on Linux, PR_SET_PDEATHSIG=SIGKILL, so that it dies
// with the parent even when the parent is SIGKILLed (see clusterProcAttr).
//
// NB: Linux sends the death signal when the thread that forked the child
// exits, not the process (golang/go#27505), and the Go runtime may end idle
// threads. The child is therefore started and waited for by a goroutine
// that holds runtime.LockOSThread for the child's whole life.
func startProc(s procSpec, events chan<- procEvent) (*proc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cmd := exec.Command(s.exe, s.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.Env = workerEnv(os.Environ(), s)
	cmd.SysProcAttr = clusterProcAttr()

	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		runtime.UnlockOSThread() // the child is gone: the thread may go too
		waited <- err
	}()
	err = <-started
	closeAll(inR, outW, errW) // the child holds its own copies
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, fmt.Errorf("start cluster %d (%s): %w", s.cluster, s.exe, err)
	}
	return attachProc(s, cmd.Process.Pid, inW, outR, errR, waited, events), nil
}

// adoptProc makes pf, a process package prefork started, cluster s's, as
// startProc would have started it.
func adoptProc(s procSpec, pf *prefork.Process, events chan<- procEvent) *proc {
	waited := make(chan error, 1)
	go func() {
		st, err := pf.Proc.Wait()
		if err == nil && !st.Success() {
			err = &exec.ExitError{ProcessState: st}
		}
		waited <- err
	}()
	return attachProc(s, pf.Proc.Pid, pf.Stdin, pf.Stdout, pf.Stderr, waited, events)
}

// attachProc starts the goroutines that read a started cluster process's
// stdout (the protocol) and stderr (its log); waited gets its exit.
func attachProc(s procSpec, pid int, inW, outR, errR *os.File, waited <-chan error, events chan<- procEvent) *proc {
	p := &proc{cluster: s.cluster, gen: s.gen, pid: pid, stdin: inW, enc: json.NewEncoder(inW)}
	p.logger.Store(s.logger.With("cluster", s.cluster, "pid", p.pid))
	var tailMu sync.Mutex
	var tail []string
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		defer errR.Close()
		sc := bufio.NewScanner(errR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			relog(p.logger.Load(), line)
			tailMu.Lock()
			tail = append(tail, line)
			if len(tail) > stderrTailLines {
				tail = tail[1:]
			}
			tailMu.Unlock()
		}
	}()
	go func() {
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 64<<10), maxMessageBytes)
		var protoErr error
		for sc.Scan() {
			m := &fromWorker{}
			if err := json.Unmarshal(sc.Bytes(), m); err != nil {
				protoErr = fmt.Errorf("cluster %d wrote %.120q: %w", s.cluster, sc.Bytes(), err)
				break
			}
			events <- procEvent{cluster: s.cluster, gen: s.gen, msg: m}
		}
		if protoErr != nil {
			p.logger.Load().Error("protocol error; killing cluster", "error", protoErr)
			killGroup(p.pid)
		}
		<-stderrDone
		err := <-waited
		if protoErr != nil {
			err = protoErr
		}
		tailMu.Lock()
		t := append([]string(nil), tail...)
		tailMu.Unlock()
		events <- procEvent{cluster: s.cluster, gen: s.gen, exited: true, exitErr: err, tail: t}
	}()
	return p
}

func workerEnv(base []string, s procSpec) []string {
	env := append(prefork.WithoutLimits(base), "GOMAXPROCS="+strconv.Itoa(s.cpus))
	if s.memLimit > 0 {
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(s.memLimit, 10))
	}
	return append(env, s.env...)
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// send writes one message to the cluster.
func (p *proc) send(m *toWorker) error {
	if err := p.enc.Encode(m); err != nil {
		return fmt.Errorf("write to cluster %d: %w", p.cluster, err)
	}
	return nil
}

// closeInput asks the cluster to exit (it exits when its stdin closes).
func (p *proc) closeInput() { p.stdin.Close() }

// kill kills the cluster's whole process group.
func (p *proc) kill() {
	killGroup(p.pid)
	p.stdin.Close()
}

// relog copies one line of a worker's stderr into the parent's log: a JSON
// slog record keeps its level, message and attributes; other lines (a
// runtime crash) are logged as warnings.
func relog(logger *slog.Logger, line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	var rec map[string]any
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rec) == nil {
		msg, _ := rec["msg"].(string)
		var lv slog.Level
		if s, ok := rec["level"].(string); ok {
			_ = lv.UnmarshalText([]byte(s))
		}
		keys := make([]string, 0, len(rec))
		for k := range rec {
			switch k {
			case "time", "level", "msg", "cluster":
				continue
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]any, 0, 2*len(keys))
		for _, k := range keys {
			attrs = append(attrs, k, rec[k])
		}
		logger.Log(context.Background(), lv, msg, attrs...)
		return
	}
	logger.Warn("cluster stderr", "line", line)
}

// exitString describes how a cluster process ended.
// sigkilled reports whether a process ended by SIGKILL.
func sigkilled(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
	}
	return false
}

func exitString(err error) string {
	if err == nil {
		return "exited"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return err.Error()
}
