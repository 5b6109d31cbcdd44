//go:build unix

package partition

import "syscall"

// fileSizeLimited reports whether this process may not write files of
// any size (RLIMIT_FSIZE, `ulimit -f`): a limit a stored run would pass
// sooner than a compressed one.
func fileSizeLimited() bool {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &l); err != nil {
		return true
	}
	// Unlimited is the largest value, or (some BSDs) the largest signed
	// one; no real limit comes near either.
	return l.Cur < 1<<62
}
