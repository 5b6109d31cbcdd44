//go:build unix

package partition

import (
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSpillCompressed_fileSizeLimit: under a file size limit (`ulimit
// -f`), however high, runs are compressed, since a stored run would pass
// it sooner.
func TestSpillCompressed_fileSizeLimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip(err)
	}
	if fileSizeLimited() {
		t.Skip("this process already has a file size limit")
	}
	lim := old
	lim.Cur = 1 << 50
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if compress, why := spillCompressed(vfs.Default, t.TempDir(), 1); !compress || !strings.Contains(why, "file size limit") {
		t.Errorf("under a file size limit: compressed %v, why %q", compress, why)
	}
}
