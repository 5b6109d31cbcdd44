//go:build faultinject

package filejob

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// faultBeforeCommit is called between TaskEnv.Computed and the commit.
func faultBeforeCommit(input string) {
	marker, path, ok := strings.Cut(os.Getenv(FaultCommitEnv), " ")
	if !ok {
		return
	}
	a, err1 := filepath.Abs(path)
	b, err2 := filepath.Abs(input)
	if err1 != nil || err2 != nil || a != b {
		return
	}
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return // made by an earlier try, or not to be made
	}
	f.Close()
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}
