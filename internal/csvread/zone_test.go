package csvread

import (
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestFile_Scan_zones counts the times of a file with and without a zone
// (Stats.ZonedTimes, LocalTimes) after every layout's rewrite into the
// plain form, and tells a file of wall-clock times (Stats.Zoneless).
func TestFile_Scan_zones(t *testing.T) {
	schema := feature.MustSchema([]string{"user", "amount", "issued_at"}, "user")
	f := func(name, in string, opts Options, wantZoned, wantLocal int64, wantRows string) {
		t.Helper()
		opts.Schema, opts.CheckValues, opts.MaxBadRowShare = schema, true, -1
		for _, workers := range []int{1, 3} {
			opts.ChunkBytes = 16
			res, err := scanFile(t, writeTemp(t, name+".csv", []byte(in)), opts, workers)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			st := res.stats
			if st.ZonedTimes != wantZoned || st.LocalTimes != wantLocal {
				t.Errorf("%s: %d zoned, %d local times; want %d, %d", name, st.ZonedTimes, st.LocalTimes, wantZoned, wantLocal)
			}
			if want := wantLocal > 0 && wantZoned == 0; st.Zoneless() != want {
				t.Errorf("%s: Zoneless %v, want %v", name, st.Zoneless(), want)
			}
			if got := rowsString(res.raw); wantRows != "" && got != wantRows {
				t.Errorf("%s: rows\n%s\nwant\n%s", name, got, wantRows)
			}
		}
	}
	const h = "user,amount,issued_at\n"
	f("iso local", h+"a,1,2023-01-31 14:05:00\nb,2,2023-01-31T15:00:00.5\nc,3,2023-02-01\n", Options{}, 0, 3,
		"a|1|2023-01-31 14:05:00\nb|2|2023-01-31T15:00:00.5\nc|3|2023-02-01\n")
	f("iso zoned", h+"a,1,2023-01-31T14:05:00Z\nb,2,2023-01-31 15:00:00-06:00\n", Options{}, 2, 0, "")
	f("iso mixed", h+"a,1,2023-01-31T14:05:00Z\nb,2,2023-01-31 15:00:00\n", Options{}, 1, 1, "")
	f("dmy local", h+"a,1,31/01/2023 14:05\nb,2,13/02/2023\n", Options{}, 0, 2,
		"a|1|2023-01-31T14:05:00\nb|2|2023-02-13\n")
	f("dmy zoned", h+"a,1,31/01/2023 14:05+01:00\n", Options{}, 1, 0, "a|1|2023-01-31T13:05:00Z\n")
	f("epoch", h+"a,1,1675173900\nb,2,1675173960\n", Options{}, 2, 0, "a|1|2023-01-31T14:05:00Z\nb|2|2023-01-31T14:06:00Z\n")
	f("tz", h+"a,1,2023-01-31 14:05:00\nb,2,2023-01-31T15:00:00Z\n", Options{TZ: "America/Mexico_City"}, 2, 0,
		"a|1|2023-01-31T20:05:00Z\nb|2|2023-01-31T15:00:00Z\n")
	f("no times", h+"a,1,\nb,2,\n", Options{}, 0, 0, "")
	// A row dropped for a bad amount does not count its time.
	f("bad row", h+"a,x,2023-01-31T14:05:00Z\nb,2,2023-01-31 15:00:00\n", Options{}, 0, 1, "b|2|2023-01-31 15:00:00\n")
}
