// Package fbuild compiles a user's features file (f.go) together with mce
// into a features binary: mce's own command line (cmd/mce, copied from
// mce's embedded source) carrying the user's Spec instead of the built-in
// one, whose hidden worker command runs the clusters of `mce run` and
// `mce reduce`. The user's file keeps a package of its own inside the
// build (its package clause renamed, its lines unchanged), so that its
// names never meet the command line's.
//
// The binary is cached under the user cache directory (or MCE_CACHE),
// keyed by a hash of f.go, of mce's own source and of the Go version, and is
// rebuilt only when one of them changes. The build needs the Go toolchain
// and, the first time, mce's dependencies in the module cache (or the module
// proxy); after that it works offline.
package fbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/mce-engine/mce/internal/srctree"
)

// ErrNoGo is returned when no Go toolchain can be found.
var ErrNoGo = errors.New("compiling --features needs the Go toolchain: install Go from https://go.dev/dl " +
	"and put `go` on PATH (or set MCE_GO to its path)")

// CompileError is a compiler error in the user's features file; Output
// names f.go by the path the user gave, with line numbers.
type CompileError struct {
	File   string
	Output string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("compile %s:\n%s", e.File, strings.TrimRight(e.Output, "\n"))
}

// Options control a build.
type Options struct {
	// CacheDir overrides the cache location.
	CacheDir string
	Logger   *slog.Logger
}

// BuildTags are the build tags of a features binary, as the Makefile
// builds mce: urfave_cli_no_docs leaves out the CLI's Markdown and man
// page writers, whose Markdown package's initialisation took about 1 ms of
// every cluster's start.
const BuildTags = "urfave_cli_no_docs"

// Build compiles the features file at path and returns the binary's path.
func Build(ctx context.Context, path string, opts Options) (string, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return "", fmt.Errorf("read features file: %w", err)
	}
	entry, err := checkFile(path, src)
	if err != nil {
		return "", err
	}
	cache := cacheDir(opts)
	goBin, goVersion, tree, err := toolchain(ctx, cache)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s/%s\n%s\n", tree.Hash, bytes.TrimSpace(goVersion), runtime.GOOS, runtime.GOARCH, BuildTags)
	h.Write(src)
	key := hex.EncodeToString(h.Sum(nil)[:12])
	// NB: the cache holds programs mce runs: only its owner may write it.
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", fmt.Errorf("features cache: %w", err)
	}
	if err := os.Chmod(cache, 0o700); err != nil {
		return "", fmt.Errorf("features cache: %w", err)
	}
	exe := filepath.Join(cache, "bin", key, "mce-features")
	if _, err := os.Stat(exe); err == nil {
		if cachedOK(exe) {
			logger.Debug("features binary cached", "features", path, "binary", exe)
			return exe, nil
		}
		logger.Warn("the cached features binary does not match what was built; building it again", "binary", exe)
		os.Remove(exe)
		os.Remove(exe + statSuffix)
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
	// The features binary is a copy of cmd/mce inside mce's module, with
	// the user's file in a package of its own below it, so that f.go may
	// import mce's packages (internal ones included) and its dependencies.
	pkgRel := "cmd/mcefeatures_" + key
	userRel := pkgRel + "/" + userPkg
	pkgDir := filepath.Join(srcDir, filepath.FromSlash(pkgRel))
	if err := os.RemoveAll(pkgDir); err != nil {
		return "", err
	}
	defer os.RemoveAll(pkgDir)
	if err := writeBuildPackage(srcDir, pkgDir, filepath.Base(abs), src, fmt.Sprintf(initTemplate, userRel, entry)); err != nil {
		return "", err
	}
	base := filepath.Base(abs)
	if err := os.MkdirAll(filepath.Dir(exe), 0o700); err != nil {
		return "", err
	}
	tmpExe := exe + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmpExe)
	start := time.Now()
	logger.Info("compiling features", "features", path, "binary", exe)
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", BuildTags, "-o", tmpExe, "./"+pkgRel)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := rewritePaths(string(out), userRel, base, path)
		if strings.Contains(msg, "zz_mce_features.go") {
			// Only a Features of the wrong type fails in the generated file.
			msg = path + ": Features must be a feature.Spec: declare `var Features = feature.Spec{...}` or `func Features() feature.Spec`"
		}
		return "", &CompileError{File: path, Output: msg}
	}
	sum, err := fileSum(tmpExe)
	if err != nil {
		return "", fmt.Errorf("install features binary: %w", err)
	}
	if err := os.WriteFile(exe+sumSuffix, []byte(sum+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("install features binary: %w", err)
	}
	if err := os.Rename(tmpExe, exe); err != nil {
		return "", fmt.Errorf("install features binary: %w", err)
	}
	if fi, err := os.Stat(exe); err == nil {
		recordStat(exe, statKey(fi)) // after the rename, which sets the change time
	}
	logger.Info("compiled features", "features", path, "seconds", time.Since(start).Seconds())
	return exe, nil
}

// userPkg is the package the user's file is compiled in.
const userPkg = "userfeatures"

// initTemplate makes a copy of cmd/mce carry the user's Features.
const initTemplate = `// Code generated by mce; DO NOT EDIT.

package main

import (
	"github.com/mce-engine/mce/engine/feature"

	userfeatures "github.com/mce-engine/mce/%s"
)

func init() {
	builtinSpec = func() feature.Spec { return userfeatures.%s }
	featuresBinary = true
}
`

// writeBuildPackage fills pkgDir with cmd/mce's files from the source tree
// at srcDir, the generated init file, and the user's file (named base) in
// the userPkg folder with its package clause renamed.
func writeBuildPackage(srcDir, pkgDir, base string, src []byte, init string) error {
	if err := os.MkdirAll(filepath.Join(pkgDir, userPkg), 0o755); err != nil {
		return err
	}
	cmdDir := filepath.Join(srcDir, "cmd", "mce")
	ents, err := os.ReadDir(cmdDir)
	if err != nil {
		return fmt.Errorf("mce's source: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cmdDir, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pkgDir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "zz_mce_features.go"), []byte(init), 0o644); err != nil {
		return err
	}
	renamed, err := renamePackage(src, userPkg)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(pkgDir, userPkg, base), renamed, 0o644)
}

// renamePackage returns src with its package clause naming name, every
// other byte (and so every line number) unchanged.
func renamePackage(src []byte, name string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.PackageClauseOnly)
	if err != nil {
		return nil, err
	}
	off := fset.Position(f.Name.Pos()).Offset
	out := append([]byte(nil), src[:off]...)
	out = append(out, name...)
	return append(out, src[off+len(f.Name.Name):]...), nil
}

// checkFile parses f.go and returns the expression for its Spec:
// "Features" for `var Features = feature.Spec{...}`, "Features()" for a
// function. Errors name the file and line.
func checkFile(path string, src []byte) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return "", &CompileError{File: path, Output: err.Error()}
	}
	entry := ""
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil {
				continue
			}
			if d.Name.Name == "main" {
				return "", &CompileError{File: path, Output: fmt.Sprintf("%s: a features file must not declare main "+
					"(mce builds its own command line around Features)", fset.Position(d.Pos()))}
			}
			if d.Name.Name == "Features" {
				entry = "Features()"
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if vs, ok := s.(*ast.ValueSpec); ok {
					for _, n := range vs.Names {
						if n.Name == "Features" {
							entry = "Features"
						}
					}
				}
			}
		}
	}
	if entry == "" {
		return "", &CompileError{File: path, Output: path + ": no Features declared: add `var Features = feature.Spec{...}` " +
			"(see examples/ in the mce repository)"}
	}
	return entry, nil
}

func findGo() (string, error) {
	if p := os.Getenv("MCE_GO"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	// Where the official tarball installs it, for a PATH without it.
	if p := "/usr/local/go/bin/go"; fileExists(p) {
		return p, nil
	}
	return "", ErrNoGo
}

// rewritePaths makes compiler messages name the user's file instead of
// the copy inside the build tree.
func rewritePaths(out, pkgRel, base, userPath string) string {
	re := regexp.MustCompile(`(?m)(^|\s)(\./)?` + regexp.QuoteMeta(pkgRel) + `/` + regexp.QuoteMeta(base))
	out = re.ReplaceAllString(out, "${1}"+userPath)
	out = strings.ReplaceAll(out, "# github.com/mce-engine/mce/"+pkgRel+"\n", "")
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sumSuffix names the file beside a cached binary that holds the SHA-256
// it had when it was built.
const sumSuffix = ".sha256"

// statSuffix names the file beside a cached binary that holds its
// statKey when its bytes were last checked against its SHA-256.
const statSuffix = ".stat"

// cachedOK reports whether the cached binary is byte for byte the one that
// was built (a binary changed since, or without its record, is rebuilt,
// never run). The bytes are hashed only when the binary's statKey is not
// the one recorded when they were last checked: hashing a features binary
// (some 40 MB) took 28 ms of every `mce run --features`.
func cachedOK(exe string) bool {
	want, err := os.ReadFile(exe + sumSuffix)
	if err != nil {
		return false
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return false
	}
	key := statKey(fi)
	if key != "" {
		if rec, err := os.ReadFile(exe + statSuffix); err == nil && string(rec) == key+"\n" {
			return true
		}
	}
	got, err := fileSum(exe)
	if err != nil || got != strings.TrimSpace(string(want)) {
		return false
	}
	recordStat(exe, key)
	return true
}

// recordStat writes exe's statKey beside it, once its bytes are known to
// be the ones built; a record that cannot be written only means the next
// run hashes them again.
func recordStat(exe, key string) {
	if key != "" {
		replaceFile(exe+statSuffix, []byte(key+"\n"))
	}
}

// replaceFile writes a small record of the cache through a temporary file
// and a rename, so that a reader sees the old record or the new, never
// half of one. It is not synced: a record lost in a power cut is made
// again.
func replaceFile(path string, b []byte) error {
	tmp := path + fmt.Sprintf(".tmp%d", os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// fileSum returns the hex SHA-256 of a file.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// toolchain finds the Go toolchain, its version and mce's source: what a
// build needs and what its cache key holds.
func toolchain(ctx context.Context, cache string) (goBin string, version []byte, tree *srctree.Source, err error) {
	if goBin, err = findGo(); err != nil {
		return "", nil, nil, err
	}
	if version, err = goVersion(ctx, goBin, cache); err != nil {
		return "", nil, nil, fmt.Errorf("%w (running %s: %v)", ErrNoGo, goBin, err)
	}
	if tree, err = srctree.Find(); err != nil {
		return "", nil, nil, err
	}
	return goBin, version, tree, nil
}

// goVersionFile, in the cache, holds the last `go env GOVERSION` answer
// and what it was asked of.
const goVersionFile = "goversion"

// goVersion returns `go env GOVERSION` of goBin, asked in the cache folder
// (outside any module, so that the answer is the toolchain's own, or
// GOTOOLCHAIN's, wherever mce runs). The answer is kept in the cache for
// the same go binary (its path and statKey), GOTOOLCHAIN and GOROOT:
// starting the go command took 18 ms of every `mce run --features`.
func goVersion(ctx context.Context, goBin, cache string) ([]byte, error) {
	asked := ""
	if fi, err := os.Stat(goBin); err == nil {
		if k := statKey(fi); k != "" {
			asked = fmt.Sprintf("%s %s GOTOOLCHAIN=%s GOROOT=%s", goBin, k, os.Getenv("GOTOOLCHAIN"), os.Getenv("GOROOT"))
		}
	}
	memo := filepath.Join(cache, goVersionFile)
	if asked != "" {
		if b, err := os.ReadFile(memo); err == nil {
			if k, v, ok := strings.Cut(string(b), "\n"); ok && k == asked && strings.TrimSpace(v) != "" {
				return []byte(v), nil
			}
		}
	}
	cmd := exec.CommandContext(ctx, goBin, "env", "GOVERSION")
	if err := os.MkdirAll(cache, 0o700); err == nil {
		cmd.Dir = cache
	}
	v, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	if asked != "" && cmd.Dir != "" && len(bytes.TrimSpace(v)) > 0 {
		replaceFile(memo, append([]byte(asked+"\n"), v...)) // a memo: failing to keep it costs the next run 18 ms
	}
	return v, nil
}
