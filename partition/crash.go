package partition

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Crash points for Options.CrashAt ("phase:n"): the process kills itself
// with SIGKILL when phase is reached for the n-th time (from 1; 0 means the
// first time too).
//
//	read      after the n-th batch of rows is buffered
//	spill     in the middle of writing the n-th sorted run
//	merge     after the n-th sstable is finished
//	ingest    just before the tables are ingested
//	ingested  after the ingest, before MANIFEST.json is rewritten
//	delete    after a replaced file is marked deleting, before its rows go
var crashPhases = []string{"read", "spill", "merge", "ingest", "ingested", "delete"}

func parseCrashAt(s string) (phase string, n int64, err error) {
	if s == "" {
		return "", 0, nil
	}
	p, num, _ := strings.Cut(s, ":")
	ok := false
	for _, c := range crashPhases {
		ok = ok || c == p
	}
	if num == "" {
		num = "1"
	}
	n, perr := strconv.ParseInt(num, 10, 64)
	if !ok || perr != nil || n < 0 {
		return "", 0, fmt.Errorf("crash point %q: want phase:n with phase one of %s", s, strings.Join(crashPhases, ", "))
	}
	return p, max(n, 1), nil
}

// crasher kills the process at the configured point. The zero value never
// does.
type crasher struct {
	phase string
	at    int64
	count atomic.Int64
}

func newCrasher(spec string) *crasher {
	p, n, _ := parseCrashAt(spec) // validated in withDefaults
	return &crasher{phase: p, at: n}
}

// point is called at each crash point of phase.
func (c *crasher) point(phase string) {
	if c == nil || c.phase != phase {
		return
	}
	if c.count.Add(1) == c.at {
		fmt.Fprintf(os.Stderr, "mce: crash test: killing myself at %s:%d\n", phase, c.at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
