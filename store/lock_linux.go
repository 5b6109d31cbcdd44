package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// sharedLockFS is the operating system's filesystem whose Lock takes a
// shared (read) lock: what a read-only Open locks db/LOCK with, so that
// several processes (the clusters of one mce reduce, or two reduces) read
// a store at once, while a writer, whose pebble lock is exclusive, keeps
// them all out and is kept out by any of them.
//
// NB: the lock is an open file description lock (F_OFD_SETLK), not a
// classic POSIX record lock: a process's classic locks on a file all go
// when it closes any descriptor of that file, so a second read-only Open
// in one process, closed, would drop the first one's lock. OFD locks and
// classic locks conflict with each other, also within one process, so
// pebble's exclusive lock and these shared ones exclude each other.
type sharedLockFS struct{ vfs.FS }

func (sharedLockFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, err
	}
	spec := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &spec); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}

// readLockFS returns the filesystem a read-only Open takes its lock
// through: one of shared locks on the operating system's filesystem; any
// other (a test's wrapped or in-memory one) locks exclusively, as pebble
// does.
func readLockFS(fs vfs.FS) vfs.FS {
	if fs == vfs.Default {
		return sharedLockFS{fs}
	}
	return fs
}
