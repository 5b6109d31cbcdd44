package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/store"
)

// runMain runs the mce command line in this process and returns its exit
// code, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	os.Stdout, os.Stderr = wo, we
	outc, errc := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outc <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errc <- string(b) }()
	code := Main(append([]string{"mce", "--log-level", "warn"}, args...), feature.Invoice(), false)
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outc, <-errc
}

func TestPartitionAndStoreCommands(t *testing.T) {
	tmp := t.TempDir()
	raw := filepath.Join(tmp, "raw")
	if _, err := gen.Run(context.Background(), gen.Options{Dir: raw, Seed: 2, Files: 3, Size: gen.Size{Rows: 30_000}, NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{gen.TruthFile, gen.TruthFilesFile} {
		os.Rename(filepath.Join(raw, n), filepath.Join(tmp, n))
	}
	st := filepath.Join(tmp, "store")
	// Flags after the input, as people write them.
	code, out, errs := runMain(t, "partition", raw, "--out", st, "--mem", "16MiB", "--heavy-min-rows", "1000", "--shards", "8")
	if code != 0 || !strings.Contains(out, "3 file(s) ingested") {
		t.Fatalf("partition: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runMain(t, "partition", raw, "--out", st)
	if code != 0 || !strings.Contains(out, "0 file(s) ingested, 3 unchanged") {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = runMain(t, "store", "info", st)
	if code != 0 {
		t.Fatalf("store info: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"files    3", "rows     30000", "users    ", "heavy users: ", "BNM840515VB1", "on disk", "invoices_2024_12.csv", "shards (bytes on disk)"} {
		if !strings.Contains(out, want) {
			t.Errorf("store info does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "an older format") {
		t.Errorf("store info calls a new store's format older:\n%s", out)
	}
	// A store of an older format (format 3, before packed amounts) says
	// how to get the newer one.
	old := filepath.Join(tmp, "format3")
	if err := os.CopyFS(old, os.DirFS(filepath.Join("..", "..", "store", "testdata", "format3", "store"))); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runMain(t, "store", "info", old)
	if want := fmt.Sprintf("this mce makes format %d stores", store.FormatVersion); code != 0 || !strings.Contains(out, "(format 3,") || !strings.Contains(out, want) {
		t.Errorf("store info of a format 3 store: exit %d, no %q\n%s\n%s", code, want, out, errs)
	}
	code, out, _ = runMain(t, "store", "info", st, "--json")
	var inf struct {
		Users    int64
		Manifest struct{ Rows int64 }
	}
	if err := json.Unmarshal([]byte(out), &inf); code != 0 || err != nil || inf.Manifest.Rows != 30000 || inf.Users == 0 {
		t.Errorf("store info --json: exit %d, %v, %+v", code, err, inf)
	}
	code, out, errs = runMain(t, "store", "verify", st, "--decode")
	if code != 0 || !strings.Contains(out, "is sound: 3 files, 30000 rows") {
		t.Errorf("store verify: exit %d\n%s\n%s", code, out, errs)
	}

	// Clear errors, no panics.
	code, _, errs = runMain(t, "partition", raw, "--out", st, "--codec", "lzma")
	if code != 2 || !strings.Contains(errs, "--codec") {
		t.Errorf("bad --codec: exit %d: %s", code, errs)
	}
	code, _, errs = runMain(t, "store", "info", filepath.Join(tmp, "nothing"))
	if code != 1 || !strings.Contains(errs, "no store") {
		t.Errorf("missing store: exit %d: %s", code, errs)
	}
	man := filepath.Join(st, "MANIFEST.json")
	b, _ := os.ReadFile(man)
	other := bytes.Replace(b, []byte(fmt.Sprintf(`"format": %d`, store.FormatVersion)), []byte(`"format": 7`), 1)
	if bytes.Equal(other, b) {
		t.Fatalf("no format %d in the manifest:\n%s", store.FormatVersion, b)
	}
	os.WriteFile(man, other, 0o644)
	code, _, errs = runMain(t, "store", "verify", st)
	if code != 1 || !strings.Contains(errs, "format version 7") {
		t.Errorf("other version: exit %d: %s", code, errs)
	}
	os.WriteFile(man, b[:len(b)/2], 0o644)
	code, _, errs = runMain(t, "store", "info", st)
	if code != 1 || !strings.Contains(errs, "corrupt") || strings.Contains(errs, "panic") {
		t.Errorf("corrupt manifest: exit %d: %s", code, errs)
	}
}
