package fbuild

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCachedOK: a cached binary is served when its bytes are the ones
// recorded, whether its stat record is current (no hashing) or stale (hashed
// and recorded again), and refused when its bytes changed, even when the
// change kept its size and modification time.
func TestCachedOK(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stat record is kept on Linux only")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "mce-features")
	body := []byte(strings.Repeat("a built binary\n", 1000))
	install := func() {
		t.Helper()
		if err := os.WriteFile(exe, body, 0o755); err != nil {
			t.Fatal(err)
		}
		sum, err := fileSum(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe+sumSuffix, []byte(sum+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(exe)
		recordStat(exe, statKey(fi))
	}
	install()
	if !cachedOK(exe) {
		t.Fatal("a freshly recorded binary is not served")
	}

	// A stale record: the bytes are hashed, found right, and recorded.
	if err := os.WriteFile(exe+statSuffix, []byte("dev=0 ino=0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !cachedOK(exe) {
		t.Fatal("a binary with the right bytes and a stale stat record is not served")
	}
	fi, _ := os.Stat(exe)
	if rec, _ := os.ReadFile(exe + statSuffix); string(rec) != statKey(fi)+"\n" {
		t.Errorf("stat record not rewritten: %q", rec)
	}

	// Changed bytes, same size and modification time: refused.
	mtime := fi.ModTime()
	changed := append([]byte(nil), body...)
	changed[0] = 'A'
	time.Sleep(10 * time.Millisecond) // a change time the write can move
	if err := os.WriteFile(exe, changed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(exe, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(exe); fi2.Size() != fi.Size() || !fi2.ModTime().Equal(mtime) {
		t.Fatalf("the change did not keep size and time: %v %v", fi2.Size(), fi2.ModTime())
	}
	if cachedOK(exe) {
		t.Error("a binary whose bytes changed (size and mtime kept) was served")
	}

	// No SHA-256 record: refused.
	install()
	os.Remove(exe + sumSuffix)
	if cachedOK(exe) {
		t.Error("a binary without its SHA-256 record was served")
	}
}

// TestGoVersion_memo: the go command is asked once for the same go binary
// and GOTOOLCHAIN, and again when the binary changes.
func TestGoVersion_memo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the answer is kept on Linux only")
	}
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	calls := filepath.Join(dir, "calls")
	goBin := filepath.Join(dir, "go")
	script := "#!/bin/sh\necho x >> " + calls + "\necho go1.99.1\n"
	if err := os.WriteFile(goBin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ncalls := func() int {
		b, _ := os.ReadFile(calls)
		return strings.Count(string(b), "x")
	}
	for i := 0; i < 3; i++ {
		v, err := goVersion(context.Background(), goBin, cache)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(v)) != "go1.99.1" {
			t.Fatalf("version %q", v)
		}
	}
	if n := ncalls(); n != 1 {
		t.Errorf("go was run %d times for the same binary, want 1", n)
	}

	t.Setenv("GOTOOLCHAIN", "local")
	if _, err := goVersion(context.Background(), goBin, cache); err != nil {
		t.Fatal(err)
	}
	if n := ncalls(); n != 2 {
		t.Errorf("go was run %d times after GOTOOLCHAIN changed, want 2", n)
	}

	// An upgraded go binary is asked again.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(goBin, []byte(strings.Replace(script, "go1.99.1", "go1.99.2", 1)), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := goVersion(context.Background(), goBin, cache)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(v)) != "go1.99.2" || ncalls() != 3 {
		t.Errorf("after the go binary changed: version %q, %d runs (want go1.99.2, 3)", v, ncalls())
	}
}
