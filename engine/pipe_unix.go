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
// f is returned as it is when it is not a pipe or cannot be changed.
// Otherwise the new file has a descriptor of its own (a dup of f's), for
// the caller to close: f stays open, and the two never close each other's
// descriptor (the file descriptor's O_NONBLOCK is shared, so f must not
// be read from afterwards).
func pollablePipe(f *os.File) *os.File {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return f
	}
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return f
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return f
	}
	return os.NewFile(uintptr(fd), f.Name())
}
