package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mce-engine/mce/internal/gen"
)

// Dataset is the input every system reads.
type Dataset struct {
	Dir       string
	Files     []string // invoice files, sorted by name
	RawBytes  int64    // uncompressed bytes, headers included
	DiskBytes int64
	Rows      int64 // data rows; 0 when unknown
	// Plain is true when every file is uncompressed.
	Plain bool
	// Truth and TruthFiles are the generator's truth files, or "".
	Truth, TruthFiles string
	// Generated says the bench wrote it, and GenSeconds how long `mce
	// gen` took (0: kept from an earlier bench and reused).
	Generated  bool
	GenSeconds float64
	Desc       string
}

// genStamp records the settings that made a generated dataset, so that a
// kept dataset is reused only for the same settings.
type genStamp struct {
	Size       string  `json:"size"`
	Files      int     `json:"files"`
	Seed       uint64  `json:"seed"`
	HeavyShare float64 `json:"heavy_share"`
	Messy      bool    `json:"messy"`
	Encoding   string  `json:"encoding"`
	MCE        string  `json:"mce_version"`
}

const stampName = "bench-gen.json"

// prepareData generates the dataset with `mce gen` (or reuses a kept one
// made with the same settings) or opens cfg.Data.
func prepareData(ctx context.Context, cfg *Config, mce *mceInfo) (*Dataset, error) {
	if cfg.Data != "" {
		d, err := openDataset(cfg.Data, cfg.Data)
		if err != nil {
			return nil, err
		}
		d.Desc = "existing files in " + shownPath(cfg.Src, cfg.Data)
		return d, nil
	}
	dir := filepath.Join(cfg.Work, "data")
	truthDir := filepath.Join(cfg.Work, "truth")
	desc := fmt.Sprintf("`mce gen --seed %d --files %d --size %s --heavy-share %g --encoding %s%s`",
		cfg.Seed, cfg.Files, cfg.Size, cfg.HeavyShare, cfg.Encoding, map[bool]string{true: " --messy"}[cfg.Messy])
	d, err := generate(ctx, cfg, mce, cfg.Size, dir, truthDir)
	if err != nil {
		return nil, err
	}
	d.Desc = desc
	if d.GenSeconds == 0 {
		d.Desc += " (kept from an earlier bench)"
	}
	return d, nil
}

// generate writes the bench's data at size into dir with `mce gen`, its
// truth files into truthDir, and returns it. Data kept from an earlier
// bench (--keep-data) with the same settings and the same mce is reused
// instead (its GenSeconds 0).
func generate(ctx context.Context, cfg *Config, mce *mceInfo, size, dir, truthDir string) (*Dataset, error) {
	stamp := genStamp{Size: size, Files: cfg.Files, Seed: cfg.Seed, HeavyShare: cfg.HeavyShare, Messy: cfg.Messy, Encoding: cfg.Encoding, MCE: mce.version}
	want, _ := json.Marshal(stamp)
	if have, err := os.ReadFile(filepath.Join(truthDir, stampName)); err == nil && string(have) == string(want) {
		if d, err := openDataset(dir, truthDir); err == nil && len(d.Files) > 0 {
			cfg.Logger.Info("bench: reusing kept data", "dir", dir)
			d.Generated = true
			return d, nil
		}
	}
	if !mce.has("gen") {
		return nil, fmt.Errorf("mce gen is not available in %s, so there is no data to measure: build a newer mce or give --data DIR", cfg.MCE)
	}
	for _, d := range []string{dir, truthDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	cfg.Logger.Info("bench: generating data", "size", size, "files", cfg.Files, "dir", dir)
	s, err := Measure(ctx, Command{Args: genArgs(cfg, dir, size)})
	if err != nil {
		return nil, fmt.Errorf("generate data: %w", err)
	}
	if err := moveTruth(dir, truthDir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(truthDir, stampName), want, 0o644); err != nil {
		return nil, err
	}
	d, err := openDataset(dir, truthDir)
	if err != nil {
		return nil, err
	}
	d.Generated, d.GenSeconds = true, s.Wall.Seconds()
	return d, nil
}

// genArgs is the `mce gen` command line of the bench's data, size bytes
// of it, into dir.
func genArgs(cfg *Config, dir, size string) []string {
	args := []string{cfg.MCE, "gen", "--out", dir, "--seed", strconv.FormatUint(cfg.Seed, 10),
		"--files", strconv.Itoa(cfg.Files), "--size", size, "--heavy-share", strconv.FormatFloat(cfg.HeavyShare, 'g', -1, 64), "--encoding", cfg.Encoding}
	if cfg.Messy {
		args = append(args, "--messy")
	}
	return args
}

// moveTruth moves the generator's truth files from dir to truthDir:
// they are CSV files too, and every system reads the input folder as it
// is.
func moveTruth(dir, truthDir string) error {
	if err := os.MkdirAll(truthDir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{gen.TruthFile, gen.TruthFilesFile} {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(truthDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move %s: %w", name, err)
		}
	}
	return nil
}

// isInput says whether name is an invoice file the systems read.
func isInput(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "truth") || strings.HasPrefix(n, "_") {
		return false
	}
	for _, ext := range []string{".csv", ".tsv", ".txt"} {
		for _, c := range []string{"", ".gz", ".zst"} {
			if strings.HasSuffix(n, ext+c) {
				return true
			}
		}
	}
	return false
}

// openDataset lists the input files of dir and reads the truth files in
// truthDir when there are any.
func openDataset(dir, truthDir string) (*Dataset, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	d := &Dataset{Dir: dir, Plain: true}
	for _, e := range ents {
		if e.IsDir() || !isInput(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := e.Info()
		if err != nil {
			return nil, err
		}
		d.Files = append(d.Files, p)
		d.DiskBytes += st.Size()
		if strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".zst") {
			d.Plain = false
		}
	}
	if len(d.Files) == 0 {
		return nil, fmt.Errorf("data %s: no .csv/.tsv/.txt files", dir)
	}
	sort.Strings(d.Files)
	d.RawBytes = d.DiskBytes
	if p := filepath.Join(truthDir, gen.TruthFile); fileExists(p) {
		d.Truth = p
	}
	if p := filepath.Join(truthDir, gen.TruthFilesFile); fileExists(p) {
		d.TruthFiles = p
		var raw, rows int64
		err := csvTable(p, func(col map[string]int, rec []string) error {
			for name, dst := range map[string]*int64{"bytes": &raw, "rows": &rows, "bad_rows": &rows} {
				if i, ok := col[name]; ok {
					v, err := strconv.ParseInt(rec[i], 10, 64)
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					*dst += v
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if raw > 0 {
			d.RawBytes = raw
		}
		d.Rows = rows
	}
	return d, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			st, err := e.Info()
			if err != nil {
				return err
			}
			n += st.Size()
		}
		return nil
	})
	return n, err
}

// shownPath is path as a report shows it: relative to the repository src
// when it is inside it, so that a report does not name the machine's
// folders.
func shownPath(src, path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		if rel, err := filepath.Rel(src, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel
		}
	}
	return path
}
