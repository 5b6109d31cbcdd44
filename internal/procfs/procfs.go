// Package procfs reads what mce needs of this process from Linux's /proc.
package procfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// PeakRSS returns this process's peak resident set size (VmHWM of
// /proc/self/status) in bytes, or 0 where there is no /proc.
func PeakRSS() int64 { return statusKB("VmHWM:") }

// RSS returns this process's resident set size (VmRSS of
// /proc/self/status) in bytes, or 0 where there is no /proc.
func RSS() int64 { return statusKB("VmRSS:") }

// statusKB returns the field name (a size in kB) of /proc/self/status in
// bytes, or 0 where it cannot be read.
func statusKB(name string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	n, _ := kbField(b, name)
	return n
}

// FileRSS returns the part of this process's resident set that is not its
// own anonymous memory (RssFile and RssShmem of /proc/self/status: the
// executable's and libraries' pages, mapped files, shared memory), in
// bytes, or 0 where there is no /proc. The Go runtime's memory limit does
// not count it; an RSS does.
func FileRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	file, _ := kbField(b, "RssFile:")
	shmem, _ := kbField(b, "RssShmem:")
	return file + shmem
}

// ResetPeakRSS sets this process's peak RSS back to its current RSS
// (/proc/self/clear_refs, value 5), so that PeakRSS measures what follows.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PSS returns a process's proportional set size (Pss of
// /proc/PID/smaps_rollup): its private pages plus its share of each page
// it shares, so that the sum over processes counts a shared page once.
func PSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, err
	}
	return kbField(b, "Pss:")
}

// kbField returns the "NAME: N kB" field of a /proc file in bytes.
func kbField(b []byte, name string) (int64, error) {
	for _, ln := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(ln, name); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s %q: %w", name, rest, err)
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s field", name)
}

// Cgroup is this process's memory cgroup (v2, or v1's memory controller).
type Cgroup struct {
	dir string
	v2  bool
}

// OwnCgroup finds this process's memory cgroup; an error when there is
// none to read (no cgroup file system, or no memory controller).
func OwnCgroup() (*Cgroup, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(ln, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			cg := &Cgroup{dir: filepath.Join("/sys/fs/cgroup", parts[2]), v2: true}
			if _, err := os.Stat(filepath.Join(cg.dir, "memory.current")); err == nil {
				return cg, nil
			}
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			cg := &Cgroup{dir: filepath.Join("/sys/fs/cgroup/memory", parts[2])}
			if _, err := os.Stat(filepath.Join(cg.dir, "memory.usage_in_bytes")); err == nil {
				return cg, nil
			}
		}
	}
	return nil, errors.New("no readable memory cgroup for this process")
}

// WorkingSet returns the cgroup's memory use less its inactive file cache
// (which the kernel reclaims before it kills anything): the figure the
// kernel's out-of-memory decision follows.
func (c *Cgroup) WorkingSet() (int64, error) {
	usageFile, statKey := "memory.current", "inactive_file "
	if !c.v2 {
		usageFile, statKey = "memory.usage_in_bytes", "total_inactive_file "
	}
	b, err := os.ReadFile(filepath.Join(c.dir, usageFile))
	if err != nil {
		return 0, err
	}
	usage, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", usageFile, err)
	}
	st, err := os.ReadFile(filepath.Join(c.dir, "memory.stat"))
	if err != nil {
		return 0, err
	}
	for _, ln := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(ln, statKey); ok {
			if v, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil && v <= usage {
				return usage - v, nil
			}
		}
	}
	return usage, nil
}

// String names the cgroup's folder.
func (c *Cgroup) String() string { return c.dir }

// Limit returns the cgroup's memory limit in bytes (memory.max, or v1's
// memory.limit_in_bytes), and false when it has none.
func (c *Cgroup) Limit() (int64, bool) {
	name := "memory.max"
	if !c.v2 {
		name = "memory.limit_in_bytes"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<60 {
		return 0, false // "max", or v1's "no limit" near 2^63
	}
	return v, true
}
