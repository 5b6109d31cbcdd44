package fbuild

import (
	"fmt"
	"os"
	"syscall"
)

// statKey identifies a file's contents by its inode's record: device,
// inode, size, and the times of the last write and of the last change.
// Any write to the file changes its change time, which no user can set
// back (touch sets the write time, and the change time to now), so the
// same key means the same bytes for as long as the file stays where it
// is. It is "" where the record cannot be read.
func statKey(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("dev=%d ino=%d size=%d mtime=%d.%09d ctime=%d.%09d",
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}
