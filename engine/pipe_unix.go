//go:build unix

package engine

import (
	"os"
	"syscall"
)

// pollablePipe returns f, when it is a pipe, as a file whose reads wait in
// the Go runtime's poller rather than in a read(2) that blocks its thread.
//
// A cluster inherits its stdin from the parent in blocking mode (os/exec
// hands the child a blocking descriptor). The goroutine that waits there
// for the next message then holds one of the process's Ps inside a system
// call for a whole task, until sysmon takes the P back; in a busy process
// sysmon looks only every 10 ms, so a goroutine made runnable meanwhile
// finds no idle P: at the start of every file one of a 2-CPU cluster's
// CPUs sat idle for 10–20 ms (seen in an execution trace, MCE_TRACE).
// A non-blocking descriptor parks the goroutine instead and frees its P.
//
// f is returned as it is when it is not a pipe or cannot be changed. The
// new file shares f's descriptor: f must not be read from afterwards, and
// the caller keeps the new file for as long as the descriptor is used.
func pollablePipe(f *os.File) *os.File {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return f
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return f
	}
	return os.NewFile(uintptr(fd), f.Name())
}
