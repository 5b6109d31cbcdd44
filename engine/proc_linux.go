package engine

import "syscall"

// clusterProcAttr puts a cluster in its own process group and has the
// kernel SIGKILL it when the thread that started it dies: with the parent,
// even a SIGKILLed one.
func clusterProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup SIGKILLs a cluster's process group.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
