//go:build unix && !linux

package engine

import "syscall"

// clusterProcAttr puts a cluster in its own process group. Outside Linux
// there is no parent-death signal: a cluster whose parent was SIGKILLed
// exits as soon as it reads the end of its stdin, which closes with the
// parent.
func clusterProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup SIGKILLs a cluster's process group.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
