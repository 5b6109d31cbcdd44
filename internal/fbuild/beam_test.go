package fbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Beam build itself (minutes the first time) is tested in engine/beam,
// the module that holds the pipeline; here are its errors, which need no
// Beam.

func TestBuildBeam_NoGo(t *testing.T) {
	t.Setenv("MCE_GO", filepath.Join(t.TempDir(), "no-go-here"))
	_, err := BuildBeam(context.Background(), "", Options{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrNoGo) {
		t.Fatalf("want ErrNoGo, got %v", err)
	}
}

func TestBuildBeam_BadFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nofeat.go")
	os.WriteFile(path, []byte("package main\n\nvar X = 1\n"), 0o644)
	_, err := BuildBeam(context.Background(), path, Options{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no Features declared") {
		t.Errorf("got %v", err)
	}
	_, err = BuildBeam(context.Background(), filepath.Join(dir, "missing.go"), Options{})
	if err == nil || !strings.Contains(err.Error(), "missing.go") {
		t.Errorf("missing file: %v", err)
	}
}

// TestBuildBeam_ModulesMissingOffline: with an empty module cache and no
// way to download, the error says what is missing and how to get it.
func TestBuildBeam_ModulesMissingOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("extracts mce's source")
	}
	t.Setenv("MCE_SOURCE", repoRoot(t))
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOFLAGS", "-modcacherw")
	_, err := BuildBeam(context.Background(), "", Options{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrBeamModules) {
		t.Fatalf("want ErrBeamModules, got %v", err)
	}
	if !strings.Contains(err.Error(), "network") {
		t.Errorf("the error does not say how to get the modules: %v", err)
	}
}

func TestMissingModules(t *testing.T) {
	f := func(out string, want bool) {
		t.Helper()
		if got := missingModules(out); got != want {
			t.Errorf("missingModules(%q) = %v", out, got)
		}
	}
	f("go: github.com/apache/beam/sdks/v2@v2.78.0: module lookup disabled by GOPROXY=off", true)
	f(`go: downloading x: Get "https://proxy.golang.org/x/@v/list": dial tcp: lookup proxy.golang.org: no such host`, true)
	f("./cmd/mcebeam_1/f.go:9:10: undefined: undefinedThing", false)
}
