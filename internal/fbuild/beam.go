package fbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The Beam pipeline binary: mce's engine/beam module (a nested Go module,
// so that mce itself does not depend on Apache Beam) compiled with the
// user's f.go. It is built from the same embedded source as the features
// binary, in the nested module, and cached the same way.

// BeamProgress is logged before a Beam build that is not cached.
const BeamProgress = "building the Beam pipeline: the first build takes several minutes"

// beamModule is the nested module's folder in mce's source tree.
const beamModule = "engine/beam"

// ErrBeamModules is returned when the Beam build cannot get the Apache
// Beam SDK's modules: they are not in the Go module cache and cannot be
// downloaded.
var ErrBeamModules = errors.New("the Beam pipeline needs the Apache Beam Go SDK and its dependencies " +
	"(about 60 modules) in the Go module cache, and they could not be downloaded: run this once " +
	"with network access (or with GOPROXY set to a reachable proxy), after which it works offline")

// ErrNoBeamSource is returned when mce's source carries no engine/beam module.
var ErrNoBeamSource = errors.New("this mce binary's source has no " + beamModule +
	" module (build mce from a checkout that has it, with `make build`)")

// BuildBeam compiles the Beam pipeline binary for the features file at
// featuresPath ("" for the built-in feature set) and returns its path. The
// binary runs on this machine: Prism in-process, or the launcher of a job
// on a job server or on Dataflow. It is cached like Build; an uncached
// build logs BeamProgress first (the first one compiles the Beam SDK).
func BuildBeam(ctx context.Context, featuresPath string, opts Options) (string, error) {
	return buildBeam(ctx, featuresPath, runtime.GOOS, runtime.GOARCH, opts)
}

// BuildBeamWorker is BuildBeam for linux/amd64, the platform of Dataflow's
// workers (the --worker_binary a Dataflow job stages). On a linux/amd64
// machine it is BuildBeam's binary.
func BuildBeamWorker(ctx context.Context, featuresPath string, opts Options) (string, error) {
	return buildBeam(ctx, featuresPath, "linux", "amd64", opts)
}

func buildBeam(ctx context.Context, featuresPath, goos, goarch string, opts Options) (string, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var src []byte
	entry, base := "", ""
	if featuresPath != "" {
		abs, err := filepath.Abs(featuresPath)
		if err != nil {
			return "", err
		}
		if src, err = os.ReadFile(abs); err != nil {
			return "", fmt.Errorf("read features file: %w", err)
		}
		if entry, err = checkFile(featuresPath, src); err != nil {
			return "", err
		}
		base = filepath.Base(abs)
	}
	cache := cacheDir(opts)
	goBin, goVersion, tree, err := toolchain(ctx, cache)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "beam\n%s\n%s\n%s/%s\n", tree.Hash, bytes.TrimSpace(goVersion), goos, goarch)
	if featuresPath == "" {
		h.Write([]byte("built-in"))
	} else {
		fmt.Fprintf(h, "%s\n", base)
		h.Write(src)
	}
	key := hex.EncodeToString(h.Sum(nil)[:12])
	exe := filepath.Join(cache, "bin", key, "mce-beam")
	if _, err := os.Stat(exe); err == nil {
		logger.Debug("beam pipeline binary cached", "features", featuresPath, "binary", exe)
		return exe, nil
	}

	srcDir := filepath.Join(cache, "src", tree.Hash)
	if _, err := os.Stat(filepath.Join(srcDir, "go.mod")); err != nil {
		if err := os.MkdirAll(filepath.Dir(srcDir), 0o700); err != nil {
			return "", err
		}
		if err := tree.Extract(srcDir); err != nil {
			return "", err
		}
	}
	modDir := filepath.Join(srcDir, filepath.FromSlash(beamModule))
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		return "", ErrNoBeamSource
	}
	// The built-in set has its own main in the module; a features file
	// gets a package of its own beside it, with a generated main.
	pkgRel := "cmd/mce-beam"
	if featuresPath != "" {
		pkgRel = "cmd/mcebeam_" + key
		pkgDir := filepath.Join(modDir, filepath.FromSlash(pkgRel))
		if err := os.RemoveAll(pkgDir); err != nil {
			return "", err
		}
		if err := os.MkdirAll(pkgDir, 0o755); err != nil {
			return "", err
		}
		defer os.RemoveAll(pkgDir)
		// A features file may be of any package (examples/receivers is
		// package receivers): here it joins the generated main.
		renamed, err := renamePackage(src, "main")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(pkgDir, base), renamed, 0o644); err != nil {
			return "", err
		}
		main := fmt.Sprintf(beamMainTemplate, entry)
		if err := os.WriteFile(filepath.Join(pkgDir, "zz_mce_main.go"), []byte(main), 0o644); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(exe), 0o700); err != nil {
		return "", err
	}
	tmpExe := exe + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmpExe)
	start := time.Now()
	logger.Info(BeamProgress, "features", featuresName(featuresPath), "binary", exe)
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmpExe, "./"+pkgRel)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "GOOS="+goos, "GOARCH="+goarch)
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if missingModules(string(out)) {
			return "", fmt.Errorf("%w\n%s", ErrBeamModules, strings.TrimSpace(lastLines(string(out), 4)))
		}
		if featuresPath == "" {
			return "", fmt.Errorf("build the Beam pipeline:\n%s", strings.TrimRight(string(out), "\n"))
		}
		msg := rewritePaths(string(out), pkgRel, base, featuresPath)
		msg = strings.ReplaceAll(msg, "# github.com/mce-engine/mce/"+beamModule+"/"+pkgRel+"\n", "")
		return "", &CompileError{File: featuresPath, Output: msg}
	}
	if err := os.Rename(tmpExe, exe); err != nil {
		return "", fmt.Errorf("install beam pipeline binary: %w", err)
	}
	logger.Info("built the Beam pipeline", "features", featuresName(featuresPath), "seconds", time.Since(start).Seconds())
	return exe, nil
}

const beamMainTemplate = `// Code generated by mce; DO NOT EDIT.

package main

import (
	"os"

	"github.com/mce-engine/mce/engine/beam/pipeline"
)

func main() {
	os.Exit(pipeline.Main(os.Args, %s))
}
`

// cacheDir is where built binaries are kept, as Build has it.
func cacheDir(opts Options) string {
	cache := opts.CacheDir
	if cache == "" {
		cache = os.Getenv("MCE_CACHE")
	}
	if cache == "" {
		var err error
		if cache, err = os.UserCacheDir(); err != nil {
			cache = os.TempDir()
		}
		cache = filepath.Join(cache, "mce")
	}
	return cache
}

func featuresName(path string) string {
	if path == "" {
		return "built-in"
	}
	return path
}

// missingModules reports whether go build failed for want of modules it
// could not download.
func missingModules(out string) bool {
	if strings.Contains(out, "module lookup disabled") || strings.Contains(out, "GOPROXY=off") {
		return true
	}
	for _, s := range []string{"dial tcp", "no such host", "connection refused", "i/o timeout",
		"network is unreachable", "TLS handshake timeout"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
