package output

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteBack asks the kernel to start writing n bytes of f at off to
// the disk, without waiting for them.
func startWriteBack(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}); cerr != nil {
		return cerr
	}
	return err
}
