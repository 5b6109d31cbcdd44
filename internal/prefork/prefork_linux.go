package prefork

import (
	"os"
	"syscall"
)

func init() {
	if os.Getenv(DisableEnv) != "" {
		return
	}
	args, cmd, ok := WorkerArgs(os.Args[1:])
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	early = start(exe, args, CommandEnv(cmd, os.Getenv))
}

// start starts exe with args as engine starts a cluster: its own process
// group, SIGKILLed when the thread that started it ends (here the main
// thread, which a Go program never ends before it exits), its streams on
// pipes. It returns nil when it cannot: engine then starts the cluster.
func start(exe string, args, env []string) *Process {
	var fds [6]*os.File // stdin r, w; stdout r, w; stderr r, w
	for i := 0; i < len(fds); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(fds[:i])
			return nil
		}
		fds[i], fds[i+1] = r, w
	}
	proc, err := os.StartProcess(exe, append([]string{exe}, args...), &os.ProcAttr{
		Env:   append(workerEnv(), env...),
		Files: []*os.File{fds[0], fds[3], fds[5]},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	closeFiles([]*os.File{fds[0], fds[3], fds[5]}) // the child holds its own copies
	if err != nil {
		closeFiles([]*os.File{fds[1], fds[2], fds[4]})
		return nil
	}
	return &Process{Proc: proc, Exe: exe, Args: args, Env: env, Stdin: fds[1], Stdout: fds[2], Stderr: fds[4]}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
