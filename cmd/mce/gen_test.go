package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/gen"
)

func TestGenCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"mce", "--log-level", "warn", "gen", "--out", dir, "--files", "3", "--size", "20000rows",
		"--seed", "4", "--messy", "--bad-rows", "0", "--compression", "none", "--heavy-share", "0.2"}
	if code := Main(args, feature.Invoice(), false); code != 0 {
		t.Fatalf("mce gen exited %d", code)
	}
	files, err := gen.ReadTruthFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("truth_files.csv lists %d files, want 3", len(files))
	}
	var rows int64
	for _, f := range files {
		rows += f.Rows
		if f.BadRows != 0 || f.Compression != gen.CompressNone {
			t.Errorf("%s: %d bad rows, compression %q; want none of either (--bad-rows 0, --compression none)",
				f.File, f.BadRows, f.Compression)
		}
		if _, err := os.Stat(filepath.Join(dir, f.File)); err != nil {
			t.Error(err)
		}
	}
	if rows != 20000 {
		t.Errorf("%d rows, want 20000", rows)
	}
	truth, err := gen.ReadTruth(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bank int64
	for _, tr := range truth {
		if tr.User == "BNM840515VB1" {
			bank += tr.Rows
		}
	}
	if s := float64(bank) / float64(rows); s < 0.19 || s > 0.21 {
		t.Errorf("bank holds %.3f of the rows, want --heavy-share 0.2", s)
	}
}

func TestGenCommand_BadFlags(t *testing.T) {
	f := func(flags ...string) {
		t.Helper()
		args := append([]string{"mce", "gen", "--out", t.TempDir()}, flags...)
		if code := Main(args, feature.Invoice(), false); code != 2 {
			t.Errorf("mce gen %q exited %d, want 2", flags, code)
		}
	}
	f("--size", "lots")
	f("--delimiter", ":")
	f("--encoding", "latin9")
	f("--compression", "lz4")
	f("--heavy-share", "1.5")
	f("--bad-rows", "0.9")
	f("--files", "0")
	f("extra-arg")
}
