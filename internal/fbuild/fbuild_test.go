package fbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the checkout this test runs in; builds take mce's source
// from it through MCE_SOURCE, as a binary without embedded source would.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestBuild_Example(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles mce")
	}
	t.Setenv("MCE_SOURCE", repoRoot(t))
	cache := t.TempDir()
	example := filepath.Join(repoRoot(t), "examples", "receivers", "f.go")
	exe, err := Build(context.Background(), example, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "features").CombinedOutput()
	if err != nil {
		t.Fatalf("%s features: %v\n%s", exe, err, out)
	}
	if !strings.Contains(string(out), "receivers") || !strings.Contains(string(out), "large_invoices") {
		t.Errorf("features binary does not carry the example's Spec:\n%s", out)
	}

	// A second build is served from the cache: same path, no compile.
	st1, _ := os.Stat(exe)
	exe2, err := Build(context.Background(), example, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(exe2)
	if exe2 != exe || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("second build recompiled: %s vs %s", exe, exe2)
	}

	// The cache is its owner's alone.
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("cache folder mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	// A cached binary whose bytes changed is built again, not run.
	tampered := []byte("#!/bin/sh\necho tampered\n")
	if err := os.WriteFile(exe, tampered, 0o755); err != nil {
		t.Fatal(err)
	}
	exe4, err := Build(context.Background(), example, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(exe4); bytes.Equal(b, tampered) {
		t.Error("a tampered cached binary was served")
	}
	if out, err := exec.Command(exe4, "features").CombinedOutput(); err != nil || !strings.Contains(string(out), "receivers") {
		t.Errorf("rebuilt binary: %v\n%s", err, out)
	}

	// A changed f.go gets a new binary.
	src, _ := os.ReadFile(example)
	changed := filepath.Join(t.TempDir(), "f.go")
	os.WriteFile(changed, append(src, []byte("\n// changed\n")...), 0o644)
	exe3, err := Build(context.Background(), changed, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if exe3 == exe {
		t.Errorf("changed f.go reused the old binary")
	}
}

func TestBuild_CompileErrorNamesLine(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles mce")
	}
	t.Setenv("MCE_SOURCE", repoRoot(t))
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.go")
	src := `package main

import "github.com/mce-engine/mce/engine/feature"

var Features = feature.Spec{
	Name: "broken",
	Columns: []feature.Column{{Name: "n", Type: feature.TypeInt}},
	Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
		return undefinedThing
	},
}
`
	os.WriteFile(path, []byte(src), 0o644)
	_, err := Build(context.Background(), path, Options{CacheDir: t.TempDir()})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CompileError, got %v", err)
	}
	if !strings.Contains(err.Error(), path+":9:") || !strings.Contains(err.Error(), "undefinedThing") {
		t.Errorf("error does not name %s:9:\n%v", path, err)
	}
}

func TestBuild_BadFiles(t *testing.T) {
	dir := t.TempDir()
	f := func(name, src, want string) {
		t.Helper()
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(src), 0o644)
		_, err := Build(context.Background(), path, Options{CacheDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, want)
		}
	}
	f("syntax.go", "package main\n\nvar Features = {\n", "syntax.go:3:")
	f("pkg.go", "package features\n\nvar Features = 1\n", "pkg.go: Features must be a feature.Spec")
	f("nofeat.go", "package main\n\nvar X = 1\n", "no Features declared")
	f("main.go", "package main\n\nvar Features = 1\n\nfunc main() {}\n", "must not declare main")
	_, err := Build(context.Background(), filepath.Join(dir, "missing.go"), Options{})
	if err == nil || !strings.Contains(err.Error(), "missing.go") {
		t.Errorf("missing file: %v", err)
	}
}

func TestBuild_NoGo(t *testing.T) {
	t.Setenv("MCE_GO", filepath.Join(t.TempDir(), "no-go-here"))
	path := filepath.Join(t.TempDir(), "f.go")
	os.WriteFile(path, []byte("package main\n\nvar Features = 1\n"), 0o644)
	_, err := Build(context.Background(), path, Options{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrNoGo) {
		t.Fatalf("want ErrNoGo, got %v", err)
	}
}
