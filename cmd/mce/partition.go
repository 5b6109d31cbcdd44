package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/internal/bytesize"
	"github.com/mce-engine/mce/internal/termview"
	"github.com/mce-engine/mce/partition"
	"github.com/mce-engine/mce/store"
)

// crashEnv names the environment variable that sets partition's crash
// point in tests (see partition.Options.CrashAt).
const crashEnv = "MCE_TEST_CRASH_AT"

// partitionCommand is `mce partition`: raw files into a store grouped by
// user.
func partitionCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "partition",
		Usage:     "shard every row of the raw files by user into a store, once (later runs add new files only)",
		ArgsUsage: "FILE|DIR... --out STORE",
		Description: `Reads every input file (.csv .tsv .txt, optionally .gz or .zst; folders recursively)
and stores its rows grouped by user in STORE (a Pebble database with a MANIFEST.json),
so that feature jobs (mce reduce) read users already grouped instead of parsing and
grouping the raw files again. A user's rows are contiguous across all files, in file
order; users are spread over hash shards that reducers read in parallel.

Memory: rows are sorted in a buffer of --mem, spilled to sorted runs under STORE/tmp
when full, then merged into sstables that are ingested into the store in one atomic
step (no row-at-a-time writes). Peak RSS stays near --mem whatever the input size, and
under it for an input that spills anyway: its buffers are spilled once 64MiB of each
are filled, when the final merge can read the runs that makes at once.
Without --mem the buffer is the smallest, from 128MiB to 1GiB, that holds the longest row
the reader takes (64MiB) and spills few enough runs for the final merge to read them all
at once on every CPU: 192MiB on 2 CPUs up to about 14GB of input, 480MiB for 100GB; more
with more CPUs. A bigger buffer is slower: the first touch of its pages costs (on a VM,
more than the spills a smaller one makes), and so does sorting more rows at once.

Heavy users (more than --heavy-share of the rows being ingested and at least
--heavy-min-rows rows, or listed in --heavy-users) get their own key range, cut into
chunks a reducer can split across workers. Once heavy, a user stays heavy.

Rerunning is safe and incremental: a file already ingested with the same content is
skipped, a new file is ingested, and a file whose content changed under the same name
fails unless --replace (which deletes its old rows first). Files are told apart by their
path relative to the input folder, and their content by a fingerprint (size and 16
samples of 64 KiB; --full-hash hashes every byte). A bad file fails alone and is not
recorded. Killed at any moment, the store stays usable and holds each file completely or
not at all; the next run finishes the job. The exit status is 1 when any file failed.

On a terminal stderr shows a live view (the files being read, the merge, a total with the
ETA) and the log records go to STORE/partition.log (-v: to stderr too). Off a terminal
stderr gets the log records.

Examples:
  mce partition data/ --out store
  mce partition data/ --out store --mem 4GiB --cpus 8
  mce partition data/ --out store --replace --heavy-users banks.txt
  mce store info store`,
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "store `DIR` (created if missing)"},
			&ucli.IntFlag{Name: "cpus", Usage: "parallel readers and mergers (default: all CPUs)"},
			&ucli.StringFlag{Name: "mem", Usage: "sort buffer `SIZE` (e.g. 512MiB, 4GiB); peak RSS stays near it (default: the smallest, 128MiB to 1GiB, that holds the longest row and keeps the final merge on every CPU)"},
			&ucli.StringFlag{Name: "codec", Usage: "compression: table-minlz (blocks in tables compressed with pebble's fastest codec), table-zstd (the same with zstd for blocks it shrinks by a fifth more: slower to write, seldom smaller), zstd or s2 (each block on its own), none (default: the store's; table-minlz for a new store)"},
			&ucli.Float64Flag{Name: "heavy-share", Value: partition.DefaultHeavyShare, Usage: "a user with more than this share of the rows ingested is heavy (negative: none by share)"},
			&ucli.Int64Flag{Name: "heavy-min-rows", Value: partition.DefaultHeavyMinRows, Usage: "a user needs at least `N` rows to be heavy by share"},
			&ucli.StringFlag{Name: "heavy-users", Usage: "`FILE` of users (one per line) to make heavy whatever their share"},
			&ucli.BoolFlag{Name: "replace", Usage: "replace the rows of files whose content changed since they were ingested"},
			&ucli.BoolFlag{Name: "compact", Usage: "compact the store after the ingest (done anyway once incremental runs leave 4 layers of tables)"},
			&ucli.BoolFlag{Name: "full-hash", Usage: "fingerprint new files by hashing every byte instead of sampling"},
			&ucli.IntFlag{Name: "shards", Usage: fmt.Sprintf("hash shards of a new store (default %d; an existing store keeps its own)", store.DefaultShards)},
			&ucli.BoolFlag{Name: "no-progress", Usage: "no live view on a terminal: log records on stderr instead"},
			&ucli.BoolFlag{Name: verboseFlag.Name, Aliases: verboseFlag.Aliases,
				Usage: "log records on stderr too (above the live view on a terminal); on a terminal they always go to the store's " + partitionLog},
		}, readerFlags()...),
		Action: func(c *ucli.Context) error {
			paths, err := argsAndLateFlags(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			o, err := partitionOptions(c, env, paths)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			// partition keeps its live memory within --mem; it holds the
			// Go heap to what the budget leaves it unless the user set a
			// limit of their own.
			o.LimitHeap = os.Getenv("GOMEMLIMIT") == ""
			// On a terminal a live view drawn from partition's log
			// records replaces them; they go to the store's partition.log.
			live := !c.Bool("no-progress") && termview.IsTerminal(os.Stderr)
			var pv *partitionView
			var sl *storeLog
			if live {
				tv := termview.New(os.Stderr)
				pv, sl = newPartitionView(tv), &storeLog{dir: o.Store}
				file := slog.NewTextHandler(sl, &slog.HandlerOptions{Level: min(slog.LevelInfo, env.LogLevel)})
				o.Logger = slog.New(pv.handler(slog.NewMultiHandler(file, tv.Handler(env.commandLogger(c, live).Handler()))))
			}
			res, err := partition.Run(c.Context, o)
			logPath := ""
			if live {
				pv.close()
				var unwritten []byte
				if logPath, unwritten = sl.close(); logPath == "" && err != nil {
					os.Stderr.Write(unwritten) // the store was never made: they say why
				}
			}
			if res != nil {
				fmt.Fprintf(c.App.Writer, "%s: %d file(s) ingested, %d unchanged, %d failed; %s rows%s\n%s raw in %s, %.0f MB/s; peak RSS %d MiB\n",
					o.Store, res.Ingested, res.Skipped, res.Failed, thousands(res.Rows), badNote(res), mbString(res.RawBytes),
					wallString(res.Elapsed.Seconds()), res.MBPerSec(), res.PeakRSSBytes>>20)
			}
			if logPath != "" {
				fmt.Fprintf(c.App.Writer, "log: %s\n", logPath)
			}
			var fe *partition.FilesError
			if errors.As(err, &fe) {
				return &ExitError{Code: 1, Err: err}
			}
			return err
		},
	}
}

func partitionOptions(c *ucli.Context, env *Env, paths []string) (partition.Options, error) {
	o := partition.Options{
		Inputs: paths, Store: c.String("out"), CPUs: c.Int("cpus"), Codec: c.String("codec"),
		HeavyShare: c.Float64("heavy-share"), HeavyMinRows: c.Int64("heavy-min-rows"),
		Replace: c.Bool("replace"), FullHash: c.Bool("full-hash"), Compact: c.Bool("compact"), Shards: c.Int("shards"),
		CrashAt: os.Getenv(crashEnv), Logger: env.Logger,
	}
	if len(paths) == 0 {
		return o, errors.New("partition: give input files or folders")
	}
	if o.Store == "" {
		return o, errors.New("partition: give the store folder with --out")
	}
	if o.HeavyShare == 0 {
		o.HeavyShare = -1 // --heavy-share 0: nobody is heavy by share
	}
	var err error
	if o.Codec != "" {
		if _, err := store.ParseCompression(o.Codec); err != nil {
			return o, fmt.Errorf("--codec: %w", err)
		}
	}
	if m := c.String("mem"); m != "" {
		if o.MemBytes, err = bytesize.Parse(m); err != nil {
			return o, fmt.Errorf("--mem: %w", err)
		}
		if o.MemBytes < partition.MinMemBytes {
			return o, fmt.Errorf("--mem %s: want at least %d MiB", m, partition.MinMemBytes>>20)
		}
	}
	if o.Shards < 0 || o.Shards > store.MaxShards {
		return o, fmt.Errorf("--shards %d: want 1..%d", o.Shards, store.MaxShards)
	}
	if f := c.String("heavy-users"); f != "" {
		if o.HeavyUsers, err = partition.ReadHeavyUsers(f); err != nil {
			return o, fmt.Errorf("--heavy-users: %w", err)
		}
	}
	if o.Read, err = readerOptions(c, env.Spec.Schema); err != nil {
		return o, err
	}
	return o, nil
}

// badNote is what partition's summary line adds about the rows it left
// out and the values that did not read (their samples are in the log).
func badNote(res *partition.Result) string {
	var parts []string
	if res.BadRows > 0 {
		p := thousands(res.BadRows) + " bad rows left out"
		if n := res.BadValues - res.EmptiedValues; n > 0 {
			p += ", " + thousands(n) + " of them for bad values"
		}
		parts = append(parts, p)
	}
	if res.EmptiedValues > 0 {
		parts = append(parts, thousands(res.EmptiedValues)+" bad values emptied in kept rows")
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ") + "; samples in the log"
}
