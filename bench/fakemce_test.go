package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeMCE is a stand-in for an mce with run, partition and reduce: run and
// reduce copy the features files of $FAKE_FEATURES/<job> into OUT/<job>0,
// partition writes a 1000-byte store. It tests the bench's command lines
// and plumbing, not mce.
const fakeMCE = `#!/bin/sh
case "$1" in
--help) printf 'NAME:\n   mce - fake\n\nCOMMANDS:\n   run        x\n   partition  x\n   reduce     x\n   help, h    x\n\nGLOBAL OPTIONS:\n   --help\n'; exit 0 ;;
--version) echo "mce version fake"; exit 0 ;;
features) exit 0 ;;
esac
cmd=$1; shift
out= job= store= inputs=0
while [ $# -gt 0 ]; do
  case "$1" in
  --out) out=$2; shift 2 ;;
  --job) job=$2; shift 2 ;;
  --store) store=$2; shift 2 ;;
  --*) shift 2 ;;
  *) inputs=$((inputs+1)); shift ;;
  esac
done
case "$cmd" in
run) [ "$inputs" -gt 0 ] || { echo "mce: no inputs" >&2; exit 2; } ;;
reduce) [ -s "$store/000001.sst" ] || { echo "mce: no store at $store" >&2; exit 1; } ;;
esac
case "$cmd" in
run|reduce) mkdir -p "$out/${job}0" && cp "$FAKE_FEATURES/$job"/* "$out/${job}0/" ;;
partition) [ ! -e "$out" ] || { echo "mce: store exists" >&2; exit 1; }; mkdir -p "$out" && head -c 1000 /dev/zero > "$out/000001.sst" ;;
*) echo "mce: no command $cmd" >&2; exit 3 ;;
esac
`

// writeMCEFeatures writes fs as mce's features files, one per input file,
// and a timings.csv, into dir.
func writeMCEFeatures(t *testing.T, dir string, fs *Features) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	byFile := map[string][]Key{}
	for k := range fs.Rows {
		byFile[k.File] = append(byFile[k.File], k)
	}
	var timings strings.Builder
	timings.WriteString("file,cluster,bytes,rows,bad_rows,users,map_seconds,reduce_seconds,peak_rss_mib,worker_max_seconds,worker_mean_seconds,skew,status\n")
	for file, keys := range byFile {
		sort.Slice(keys, func(i, j int) bool { return keys[i].User < keys[j].User })
		var b strings.Builder
		b.WriteString(mceHeader)
		flt := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		for _, k := range keys {
			v := fs.Rows[k]
			std := ""
			if v.Set.Has(FieldStd) {
				std = flt(v.Std)
			}
			ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
			u := func(x int64) string { return flt(float64(x) / 1e4) }
			fmt.Fprintf(&b, "%s,%d,%s,%s,%s,%s,%s,%d,%s,%s,%s,%s,0\n", k.User, v.Count, u(v.Total), flt(v.Mean), std,
				u(v.Min), u(v.Max), v.Distinct, ts(v.First), ts(v.Last), v.Top, u(v.TopAmount))
		}
		writeFile(t, dir, file+".csv.features.csv", b.String())
		fmt.Fprintf(&timings, "/data/%s.csv,0,1000,%d,0,%d,0.1,0.2,30.0,0.220,0.200,1.100,done\n", file, len(keys)*3, len(keys))
	}
	writeFile(t, dir, "timings.csv", timings.String())
}

func TestRun_FakeMCE(t *testing.T) {
	data := t.TempDir()
	paths := writeInvoices(t, data, 2, 800, 8)
	want := oracle(t, paths)
	writeTruth(t, data, want, 0)
	feats := t.TempDir()
	writeMCEFeatures(t, filepath.Join(feats, "run"), want)
	writeMCEFeatures(t, filepath.Join(feats, "reduce"), want)
	writeMCEFeatures(t, filepath.Join(feats, "run-group"), want)
	writeMCEFeatures(t, filepath.Join(feats, "run-disk"), want)
	writeMCEFeatures(t, filepath.Join(feats, "run-reduce"), want)
	writeMCEFeatures(t, filepath.Join(feats, "run-1cpu"), want)
	writeMCEFeatures(t, filepath.Join(feats, "reduce-reduce"), want)
	t.Setenv("FAKE_FEATURES", feats)

	cfg, out := testConfig(t, data)
	cfg.MCE = writeFile(t, t.TempDir(), "mce", fakeMCE)
	if err := os.Chmod(cfg.MCE, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Runs = 2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, sys := range []string{SysRun, SysRunGroup, SysRunDisk, SysRunReduce, SysPartition, SysReduce, SysReduceReduce, SysUnix} {
		if res := rep.Result(sys); !res.OK() || len(res.Runs) != 2 {
			t.Errorf("%s: %v %s, %d runs", sys, res.Status, res.Reason, len(res.Runs))
		}
	}
	if got := rep.Result(SysPartition).StoreBytes; got != 1000 {
		t.Errorf("store size %d, want 1000", got)
	}
	if sk := rep.Result(SysReduce).Skew; sk == nil || sk.Files != 2 || sk.Overall < 1.099 || sk.Overall > 1.101 {
		t.Errorf("reduce skew %+v", sk)
	}
	md := out.String()
	reportHas(t, md, "reduce agrees with run", "run-group agrees with run", "run-disk agrees with run", "run-reduce agrees with run", "run-1cpu agrees with run", "reduce-reduce agrees with run", "unix agrees with run", "run agrees with truth",
		"mce version fake", "store ≤ 50% of raw (issue 4) | 0.", "**Break-even**", "**Break-even of a Reduce-form f.go**")

	t.Run("ReduceDisagrees", func(t *testing.T) {
		// One user's mean off by 1e-6 relative in reduce's output.
		bad := &Features{System: want.System, Fields: want.Fields, Rows: map[Key]*Value{}}
		for k, v := range want.Rows {
			c := *v
			if k.User == "PEÑA900202CD4" && k.File == "invoices_2024_12" {
				c.Mean *= 1 + 1e-6
			}
			bad.Rows[k] = &c
		}
		writeMCEFeatures(t, filepath.Join(feats, "reduce"), bad)
		cfg, out := testConfig(t, data)
		cfg.MCE = rep.Config.MCE
		_, err := Run(context.Background(), cfg)
		var me *MismatchError
		if !errors.As(err, &me) || me.System != SysReduce || me.First[0].Field != "amount_mean" {
			t.Fatalf("err %v, want reduce to disagree on amount_mean", err)
		}
		if out.Len() > 0 {
			t.Errorf("figures printed despite the disagreement")
		}
	})
}
