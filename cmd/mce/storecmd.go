package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/store"
)

// storeCommand is `mce store`: look into a store made by mce partition.
func storeCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "store",
		Usage: "describe or check a store made by mce partition",
		Description: `mce store info STORE    files, rows, users, heavy users, sizes, shards
mce store verify STORE  recount every file's rows from the data and check them against the manifest`,
		Subcommands: []*ucli.Command{storeInfoCommand(env), storeVerifyCommand(env)},
	}
}

func storeInfoCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "info",
		Usage:     "show a store's files, rows, users, heavy users, raw against stored bytes and shard sizes",
		ArgsUsage: "STORE",
		Description: `Prints the store's format and layout, every file with its rows, users and sizes,
the heavy users with their share of the rows, the raw (uncompressed CSV) bytes against
the stored bytes, and the spread of bytes over the hash shards. Counting distinct users
reads every key (not the values); --no-count skips it. --shards lists every shard.

Examples:
  mce store info store
  mce store info store --json > store.json`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "no-count", Usage: "do not scan the keys to count users and blocks"},
			&ucli.BoolFlag{Name: "shards", Usage: "list every shard"},
			&ucli.BoolFlag{Name: "json", Usage: "print the description as JSON"},
		},
		Action: func(c *ucli.Context) error {
			args, err := argsAndLateFlags(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(args) != 1 {
				return &ExitError{Code: 2, Err: errors.New("store info: give one store folder")}
			}
			db, err := store.Open(args[0], &store.Options{ReadOnly: true, Logger: env.Logger})
			if err != nil {
				return err
			}
			defer db.Close()
			inf, err := db.Info(c.Context, !c.Bool("no-count"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				e := json.NewEncoder(c.App.Writer)
				e.SetIndent("", "  ")
				return e.Encode(inf)
			}
			printInfo(c.App.Writer, args[0], db, inf, c.Bool("shards"), !c.Bool("no-count"))
			return nil
		},
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func printInfo(w io.Writer, dir string, db *store.DB, inf *store.Info, allShards, counted bool) {
	m := inf.Manifest
	cols := make([]string, len(m.Schema))
	for i, c := range m.Schema {
		cols[i] = c
		if c == m.UserColumn {
			cols[i] += " (user)"
		}
	}
	var bad int64
	live := 0
	for _, f := range m.Files {
		if f.State == store.FileLive {
			bad += f.BadRows
			live++
		}
	}
	fmt.Fprintf(w, "store    %s (format %d, codec %s, %d shards, blocks of %d KiB, heavy chunks of %d blocks)\n",
		dir, m.Format, m.Codec, m.Shards, m.BlockBytes>>10, m.ChunkBlocks)
	if m.Format < store.FormatVersion {
		fmt.Fprintf(w, "         an older format: this mce makes format %d stores (smaller, and faster to reduce); partition the raw files again into a new store to get one\n", store.FormatVersion)
	}
	fmt.Fprintf(w, "schema   %s\n", strings.Join(cols, ", "))
	fmt.Fprintf(w, "files    %d\n", live)
	fmt.Fprintf(w, "rows     %d (%d bad rows skipped)\n", m.Rows, bad)
	if counted {
		fmt.Fprintf(w, "users    %d\n", inf.Users)
	}
	fmt.Fprintf(w, "size     %s of raw CSV; %s on disk (%s of raw); block values %s (%s, before sstable compression)\n",
		mb(inf.RawBytes), mb(int64(inf.DiskBytes)), pct(int64(inf.DiskBytes), inf.RawBytes), mb(inf.StoredBytes), pct(inf.StoredBytes, inf.RawBytes))

	fmt.Fprintf(w, "tables   %d, of which %d in level 0 (ingested, not yet compacted)\n", inf.Tables, inf.L0Tables)
	fmt.Fprintf(w, "\nheavy users: %d\n", len(m.Heavy))
	if len(m.Heavy) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  USER\tROWS\tSHARE\tFILES\tCHUNKS")
		for _, h := range m.Heavy {
			fmt.Fprintf(tw, "  %s\t%d\t%.2f%%\t%d\t%d\n", h.User, h.Rows, 100*h.Share, len(h.Files), len(db.Chunks(h, nil)))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nfiles:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tNAME\tROWS\tBAD\tUSERS\tRAW\tBLOCKS\tBLOCKS/RAW\tCODEC\tENCODING\tSTATE")
	for _, f := range m.Files {
		state := "ok"
		if f.State != store.FileLive {
			state = string(f.State)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Name, f.Rows, f.BadRows, f.Users,
			mb(f.RawBytes), mb(f.StoredBytes), pct(f.StoredBytes, f.RawBytes), f.Codec, f.Encoding, state)
	}
	tw.Flush()

	sh := append([]store.ShardInfo(nil), inf.Shards...)
	sort.Slice(sh, func(i, j int) bool { return sh[i].Bytes < sh[j].Bytes })
	if len(sh) > 0 {
		var total uint64
		for _, s := range sh {
			total += s.Bytes
		}
		mean := float64(total) / float64(len(sh))
		fmt.Fprintf(w, "\nshards (bytes on disk): min %s, median %s, max %s (shard %d, %.1f× the mean)\n",
			mb(int64(sh[0].Bytes)), mb(int64(sh[len(sh)/2].Bytes)), mb(int64(sh[len(sh)-1].Bytes)), sh[len(sh)-1].Shard,
			float64(sh[len(sh)-1].Bytes)/max(mean, 1))
	}
	if allShards {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SHARD\tBYTES\tUSERS\tBLOCKS")
		for _, s := range inf.Shards {
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%d\n", s.Shard, s.Bytes, s.Users, s.Blocks)
		}
		tw.Flush()
	}
}

func storeVerifyCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "verify",
		Usage:     "recount every file's rows, blocks and users from the data and check them against the manifest",
		ArgsUsage: "STORE",
		Description: `Reads every key of the store and checks that each block belongs to a recorded file,
sits in the right shard, and is numbered without gaps; recounts each file's rows
(from the block headers, or with --decode by decoding every block), blocks and users
and each heavy user's rows per file, and compares them with the manifest. Exits with
status 1 and lists the problems when anything disagrees.

Examples:
  mce store verify store
  mce store verify store --decode`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "decode", Usage: "decompress and decode every block (slower, checks the values too)"},
			&ucli.IntFlag{Name: "cpus", Usage: "parallel shard readers (default: all CPUs)"},
		},
		Action: func(c *ucli.Context) error {
			args, err := argsAndLateFlags(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(args) != 1 {
				return &ExitError{Code: 2, Err: errors.New("store verify: give one store folder")}
			}
			db, err := store.Open(args[0], &store.Options{ReadOnly: true, Logger: env.Logger})
			if err != nil {
				return err
			}
			defer db.Close()
			rep, err := db.Verify(c.Context, store.VerifyOptions{Decode: c.Bool("decode"), Workers: c.Int("cpus")})
			if err != nil {
				return err
			}
			w := c.App.Writer
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROWS\tIN STORE\tBLOCKS\tIN STORE\tUSERS\tIN STORE\t")
			for _, f := range rep.Files {
				mark := "ok"
				if !f.OK() {
					mark = "MISMATCH"
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.ID, f.Name, f.WantRows, f.GotRows,
					f.WantBlocks, f.GotBlocks, f.WantUsers, f.GotUsers, mark)
			}
			tw.Flush()
			if rep.Stale > 0 {
				fmt.Fprintf(w, "%d stale blocks (of replaced files or moved heavy users) are skipped by readers; the next mce partition removes them\n", rep.Stale)
			}
			if len(rep.Problems) > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("store %s has %d problem(s):\n  %s", args[0], len(rep.Problems), strings.Join(rep.Problems, "\n  "))}
			}
			fmt.Fprintf(w, "store %s is sound: %d files, %d rows in %d blocks\n", args[0], len(rep.Files), rep.Rows, rep.Blocks)
			return nil
		},
	}
}
