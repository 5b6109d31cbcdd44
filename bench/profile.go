package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ProfileEnv is the environment variable that asks mce to write CPU
// profiles: each process of a run (the parent and every cluster) writes
// <dir>/<name>-<pid>.pprof, dir being the variable's value.
const ProfileEnv = "MCE_CPUPROFILE"

// profileRun runs mce run once more with ProfileEnv set, outside the
// measured runs (profiling slows it), and returns `go tool pprof -top` of
// all the profiles it wrote.
func (r *runner) profileRun(ctx context.Context, cpus int) (string, error) {
	dir := filepath.Join(r.cfg.Work, "profile")
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "out")
	args := []string{r.mce.path, SysRun, "--out", out, "--job", SysRun, "--clusters", strconv.Itoa(cpus)}
	args = append(args, r.inputArgs()...)
	r.cfg.Logger.Info("bench: profiling mce run", "env", ProfileEnv+"="+dir)
	if _, err := Measure(ctx, Command{Args: args, Env: []string{ProfileEnv + "=" + dir}}); err != nil {
		return "", err
	}
	profiles, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	if len(profiles) == 0 {
		return "", fmt.Errorf("mce wrote no CPU profile (it does not read %s yet)", ProfileEnv)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-top", "-nodecount=30"}, profiles...)...)
	top, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, truncate(strings.TrimSpace(string(top)), 400))
	}
	return string(top), nil
}
