// Package bytesize reads sizes as people write them on a command line:
// "512MiB", "2GB", "1.5GiB", "300M", "1048576". It is the one size parser
// of mce: the CLI's --mem, --ram-limit and --recycle-rss, the generator's
// --size and the benchmark's sizes all go through Parse. Format writes a
// size for people to read (the progress lines, the run report).
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units maps a lower-case unit to its multiplier: KB, MB, GB, TB are powers
// of 1000; KiB, MiB, GiB, TiB and K, M, G, T alone (as sort -S reads them)
// powers of 1024.
var units = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// Split cuts s into its number and its lower-case unit ("1.5 GiB" ->
// "1.5", "gib"). Underscores in the number are dropped ("1_000MB").
func Split(s string) (num, unit string) {
	t := strings.ToLower(strings.TrimSpace(s))
	unit = strings.TrimLeft(t, "0123456789.e+_")
	// An exponent's 'e' that starts a unit ("1e", "2eb") belongs to no
	// unit we know; ParseFloat rejects the number then.
	num = strings.ReplaceAll(strings.TrimSpace(t[:len(t)-len(unit)]), "_", "")
	return num, strings.TrimSpace(unit)
}

// Multiplier returns the bytes in one unit (as Split returns it) and
// whether the unit is known.
func Multiplier(unit string) (float64, bool) {
	m, ok := units[unit]
	return m, ok
}

// Parse reads a size in bytes: a number, an optional space and an optional
// unit. Zero is allowed; negative, non-numeric and absurd sizes are errors.
func Parse(s string) (int64, error) {
	num, unit := Split(s)
	m, ok := units[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v < 0 || math.IsNaN(v) || v*m >= math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: want a number of bytes like 512MiB, 2GB or 300M", s)
	}
	return int64(math.Round(v * m)), nil
}

// Format writes b bytes in the largest binary unit it reaches, with one
// decimal ("1.5 GiB", "300.0 MiB", "12.0 KiB"), and bytes below a KiB as
// they are ("512 B").
func Format(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
