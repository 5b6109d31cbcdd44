package main

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

// readerFlags are the raw-file reading flags shared by run, partition and
// debug.
func readerFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "delimiter", Usage: "field separator: , ; | tab (default: sniffed per file)"},
		&ucli.StringFlag{Name: "encoding", Value: "auto", Usage: "text encoding: auto (UTF-8 when valid, else cp1252), utf8 or cp1252"},
		&ucli.StringSliceFlag{Name: "alias", Usage: "`column=header` maps a file's header name to a column (repeatable), e.g. --alias issuer=rfc_emisor"},
		&ucli.StringFlag{Name: "user-col", Usage: "header `name` of the user column in the files (an alias of the schema's user column)"},
		&ucli.Float64Flag{Name: "max-bad-rows", Value: 0.01, Usage: "fail a file whose share of malformed rows (and rows with bad values) exceeds this (negative: never)"},
		&ucli.StringFlag{Name: "decimal", Usage: "the amounts' decimal `SEPARATOR`, , or . (default: sniffed per file from its amounts: 1.234,56 / 1,234.56 / $ 1 234,56 / (1,234.56))"},
		&ucli.StringFlag{Name: "date-format", Usage: "the dates' `LAYOUT`: ISO, DD/MM/YYYY, MM/DD/YYYY or epoch (default: sniffed per file)"},
		&ucli.StringFlag{Name: "tz", Usage: "the time `ZONE` of times written without one, e.g. America/Mexico_City (default: they stay without one)"},
		&ucli.StringFlag{Name: "on-bad-value", Value: csvread.BadValueSkipRow, Usage: "what an amount or date that does not read does to its row: skip-row (count it, drop the row), empty (keep the row, empty value) or fail (the file fails, naming line and column)"},
	}
}

// readerOptions reads the readerFlags.
func readerOptions(c *ucli.Context, schema *feature.Schema) (csvread.Options, error) {
	if schema == nil {
		schema = feature.InvoiceSchema
	}
	o := csvread.Options{Schema: schema, MaxBadRowShare: c.Float64("max-bad-rows"), CheckValues: true,
		Decimal: c.String("decimal"), DateFormat: c.String("date-format"), TZ: c.String("tz"), OnBadValue: c.String("on-bad-value")}
	if o.MaxBadRowShare == 0 {
		o.MaxBadRowShare = 1e-12 // 0 means "no bad rows at all", not the default
	}
	switch d := c.String("delimiter"); d {
	case "":
	case ",", ";", "|":
		o.Delimiter = d[0]
	case "tab", "\\t", "\t":
		o.Delimiter = '\t'
	default:
		return o, fmt.Errorf("--delimiter %q: want , ; | or tab", d)
	}
	if o.Decimal != "" {
		if _, err := feature.ParseNumberFormat(o.Decimal); err != nil {
			return o, fmt.Errorf("--decimal %q: want a comma or a point (\",\" or \".\")", o.Decimal)
		}
	}
	if o.DateFormat != "" {
		if _, err := feature.ParseDateLayout(o.DateFormat); err != nil {
			return o, fmt.Errorf("--date-format %q: want ISO, DD/MM/YYYY, MM/DD/YYYY or epoch", o.DateFormat)
		}
	}
	switch o.OnBadValue {
	case csvread.BadValueSkipRow, csvread.BadValueEmpty, csvread.BadValueFail:
	default:
		return o, fmt.Errorf("--on-bad-value %q: want skip-row, empty or fail", o.OnBadValue)
	}
	enc, err := feature.ParseEncoding(c.String("encoding"))
	if err != nil {
		return o, fmt.Errorf("--encoding: %w", err)
	}
	o.Encoding = enc
	if o.Aliases, err = csvread.ParseAliases(schema, c.StringSlice("alias"), c.String("user-col")); err != nil {
		return o, err
	}
	return o, nil
}
