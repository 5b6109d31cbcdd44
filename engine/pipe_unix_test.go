//go:build unix

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPollablePipe checks that a pipe handed over in blocking mode, as
// os/exec gives a child its stdin, comes back as a file the runtime's
// poller waits on: only such a file takes a read deadline.
func TestPollablePipe(t *testing.T) {
	pr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A child's stdin: os/exec puts the descriptor in blocking mode (Fd),
	// and os.Stdin is os.NewFile of it.
	fd, err := syscall.Dup(int(pr.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	r := os.NewFile(uintptr(fd), "stdin")
	defer r.Close()
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("a blocking pipe took a deadline (%v): the test does not set up what a child gets", err)
	}

	p := pollablePipe(r)
	if err := p.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline on the pollable pipe: %v", err)
	}
	buf := make([]byte, 8)
	if _, err := p.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of an empty pollable pipe: %v, want a deadline error", err)
	}
	if err := p.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("task\n")); err != nil {
		t.Fatal(err)
	}
	n, err := p.Read(buf)
	if err != nil || string(buf[:n]) != "task\n" {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, "task\n")
	}
	// The pollable pipe has a descriptor of its own: closing it leaves
	// the original open (two files closing one descriptor would close
	// whatever file reuses its number later).
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat(); err != nil {
		t.Fatalf("closing the pollable pipe closed the original: %v", err)
	}
}

func TestPollablePipe_NotAPipe(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := pollablePipe(f); got != f {
		t.Fatalf("a regular file was replaced")
	}
}
