package main

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/gen"
)

// genCommand is `mce gen`: it writes demo invoice files and their truth.
func genCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "gen",
		Usage:     "generate realistic monthly invoice files (deterministic per --seed)",
		ArgsUsage: " ",
		Description: `Writes --files monthly files invoices_YYYY_MM.csv (largest first: December 2024,
then each earlier month about 12% smaller) with the columns
invoice_id, issuer, receiver, issued_at, amount, currency, description.
Issuers (the users) are RFC-like ids following a power law; one bank issues
--heavy-share of all rows. Descriptions are Spanish text with accents and ñ,
in cp1252 (as the real data is) or UTF-8.

--messy varies the files the way real deliveries vary: a delimiter per file
(, ; | tab), renamed and shuffled header columns, an extra column, CRLF line
ends in one file, one .gz and one .zst file, cp1252 and UTF-8 mixed, quoted
line breaks, and --bad-rows malformed rows.

Beside the data it writes _truth.csv (file,user,rows,amount_total over the good
rows) and _truth_files.csv (one line per file), so that a reader or a job can
prove that no row was lost or counted twice. Files of an earlier run with
other names are removed from --out. The same flags and --seed give the same
bytes, whatever the number of CPUs.

Examples:
  mce gen --out data
  mce gen --out data/big --size 2GiB --files 12 --seed 42
  mce gen --out data/messy --messy --size 1e6rows`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output `DIR` (created if missing)"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same files"},
			&ucli.IntFlag{Name: "files", Value: gen.DefaultFiles, Usage: "number of monthly files"},
			&ucli.StringFlag{Name: "size", Value: "100MB", Usage: "total `SIZE`, uncompressed: bytes (200MB, 2GiB) or rows (1e6rows)"},
			&ucli.IntFlag{Name: "users", Usage: "distinct issuers, the bank included (default: one per 25 rows, 20 to 1,000,000)"},
			&ucli.Float64Flag{Name: "heavy-share", Value: gen.DefaultHeavyShare, Usage: "share of all rows issued by the bank; 0 for no heavy issuer"},
			&ucli.StringFlag{Name: "encoding", Value: "cp1252", Usage: "text encoding: cp1252 or utf8 (--messy mixes both)"},
			&ucli.BoolFlag{Name: "messy", Usage: "vary delimiters, headers, column order, line ends, compression and encoding per file, with malformed rows"},
			&ucli.BoolFlag{Name: "value-styles", Usage: "write each file's amounts and dates in a style of its own (1.234,56, $ 1,234.56, 31/01/2024 14:05, Unix seconds...); default: on with --messy"},
			&ucli.Float64Flag{Name: "bad-rows", Usage: fmt.Sprintf("share of malformed rows (default 0, or %g with --messy)", gen.DefaultBadRowShare)},
			&ucli.StringFlag{Name: "compression", Value: "none", Usage: "none, gzip, zstd or mixed (one .gz, one .zst; the default with --messy)"},
			&ucli.StringFlag{Name: "delimiter", Value: ",", Usage: "field delimiter: , ; | or tab (with --messy: the first file's)"},
			&ucli.IntFlag{Name: "workers", Usage: "generating goroutines (default: the number of CPUs; the output does not change)"},
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return &ExitError{Code: 2, Err: fmt.Errorf("gen takes no arguments, got %q", c.Args().Slice())}
			}
			o, err := genOptions(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			o.Logger = env.Logger
			sum, err := gen.Run(c.Context, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %d files to %s: %d rows (%d bad), %.1f MB (%.1f MB on disk) in %.2f s, %.0f MB/s\n",
				len(sum.Files), sum.Dir, sum.Rows+sum.BadRows, sum.BadRows, float64(sum.Bytes)/1e6,
				float64(sum.DiskBytes)/1e6, sum.Elapsed.Seconds(), sum.MBPerSec())
			return nil
		},
	}
}

// genOptions binds the flags of `mce gen` into gen.Options.
func genOptions(c *ucli.Context) (gen.Options, error) {
	o := gen.Options{
		Dir:         c.String("out"),
		Seed:        c.Uint64("seed"),
		Files:       c.Int("files"),
		Users:       c.Int("users"),
		HeavyShare:  c.Float64("heavy-share"),
		Messy:       c.Bool("messy"),
		ValueStyles: c.Bool("messy"),
		BadRowShare: c.Float64("bad-rows"),
		Compression: c.String("compression"),
		Workers:     c.Int("workers"),
	}
	if c.IsSet("value-styles") {
		o.ValueStyles = c.Bool("value-styles")
	}
	var err error
	if o.Size, err = gen.ParseSize(c.String("size")); err != nil {
		return o, fmt.Errorf("--size: %w", err)
	}
	if o.Files < 1 {
		return o, fmt.Errorf("--files %d: want at least 1", o.Files)
	}
	if o.Users < 0 {
		return o, fmt.Errorf("--users %d: want a positive number", o.Users)
	}
	switch h := o.HeavyShare; {
	case h == 0:
		o.HeavyShare = -1 // none
	case h < 0 || h >= 1:
		return o, fmt.Errorf("--heavy-share %v: want 0 to less than 1", h)
	}
	switch b := o.BadRowShare; {
	case b == 0 && c.IsSet("bad-rows"):
		o.BadRowShare = -1 // none, even with --messy
	case b < 0 || b >= 0.5:
		return o, fmt.Errorf("--bad-rows %v: want 0 to less than 0.5", b)
	}
	switch enc, err := feature.ParseEncoding(c.String("encoding")); {
	case err != nil:
		return o, fmt.Errorf("--encoding: %w", err)
	case enc == feature.EncodingAuto:
		return o, fmt.Errorf("--encoding %q: want cp1252 or utf8", c.String("encoding"))
	default:
		o.Encoding = enc
	}
	switch comp := strings.ToLower(c.String("compression")); comp {
	case "none", "":
		o.Compression = gen.CompressNone
		if c.IsSet("compression") {
			o.Compression = "none" // none even with --messy
		}
	case gen.CompressGzip, gen.CompressZstd, gen.CompressMixed:
		o.Compression = comp
	default:
		return o, fmt.Errorf("--compression %q: want none, gzip, zstd or mixed", comp)
	}
	if o.Delimiter, err = gen.ParseDelimiter(c.String("delimiter")); err != nil {
		return o, fmt.Errorf("--delimiter: %w", err)
	}
	return o, nil
}
