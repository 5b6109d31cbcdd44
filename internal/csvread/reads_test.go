package csvread

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestFile_Scan_reads checks Options.Reads: the rows carry the columns
// read and the user column, the others empty; and what is not carried is
// still checked and counted as when it is (bad values make bad rows, dates
// are counted zoned or local, a file's comma decimals are still sniffed
// and rewritten), in plain and quoted rows.
func TestFile_Scan_reads(t *testing.T) {
	schema := feature.MustSchema([]string{"id", "user", "amount", "issued_at", "note"}, "user")
	const plain = "id,user,amount,issued_at,note\n" +
		"1,a,1.5,2023-01-31 14:05:00,hello\n" +
		"2,b,x,2023-01-31 15:00:00,bad amount\n" + // line 3: a bad amount
		"\"3\",\"c\",\"2\",\"2023-02-01T00:00:00Z\",\"quoted, with a comma\"\n" +
		"4,\"d\",3,not a date,\"bad \"\"date\"\"\"\n" // line 5: a bad date, escaped quotes
	const comma = "id;user;amount;issued_at;note\n" +
		"1;a;1.234,5;31/01/2023;x\n" +
		"2;b;2,25;13/02/2023;y\n"
	for _, c := range []struct {
		name  string
		in    string
		reads []string
		rows  string
		bad   int64
		local int64
	}{
		{"all", plain, nil,
			"1|a|1.5|2023-01-31 14:05:00|hello\n3|c|2|2023-02-01T00:00:00Z|quoted, with a comma\n", 2, 1},
		{"amount", plain, []string{"amount"},
			"|a|1.5||\n|c|2||\n", 2, 1},
		{"note, in any case", plain, []string{" NOTE "},
			"|a|||hello\n|c|||quoted, with a comma\n", 2, 1},
		{"the user only", plain, []string{"user"},
			"|a|||\n|c|||\n", 2, 1},
		{"comma decimals, not read", comma, []string{"note"},
			"|a|||x\n|b|||y\n", 0, 2},
		{"comma decimals, read", comma, []string{"amount", "issued_at"},
			"|a|1234.5|2023-01-31|\n|b|2.25|2023-02-13|\n", 0, 2},
	} {
		for _, workers := range []int{1, 3} {
			opts := Options{Schema: schema, CheckValues: true, MaxBadRowShare: -1, ChunkBytes: 48, Reads: c.reads}
			res, err := scanFile(t, writeTemp(t, "r.csv", []byte(c.in)), opts, workers)
			if err != nil {
				t.Fatalf("%s, %d workers: %v", c.name, workers, err)
			}
			if got := rowsString(res.raw); got != c.rows {
				t.Errorf("%s, %d workers: rows\n%s\nwant\n%s", c.name, workers, got, c.rows)
			}
			if st := res.stats; st.BadRows != c.bad || st.LocalTimes != c.local {
				t.Errorf("%s, %d workers: %d bad rows, %d local times; want %d, %d", c.name, workers, st.BadRows, st.LocalTimes, c.bad, c.local)
			}
			if got := strings.Join(res.users, ","); got != "a,c" && got != "a,b" {
				t.Errorf("%s, %d workers: users %s", c.name, workers, got)
			}
		}
	}

	_, err := Open(writeTemp(t, "r.csv", []byte(plain)), Options{Schema: schema, Reads: []string{"amount", "price"}})
	if err == nil || !strings.Contains(err.Error(), `"price"`) {
		t.Errorf("Reads naming a column not in the schema: %v, want an error naming it", err)
	}
}

// TestBatch_Row_reads checks that Batch.Row fills the columns read (and
// the user's) as Field has them and leaves the others empty, into one row
// reused across batches, as the one pass reuses its rows, even when the
// last holder of the row wrote into a column it does not read.
func TestBatch_Row_reads(t *testing.T) {
	schema := feature.MustSchema([]string{"id", "user", "amount", "issued_at", "note"}, "user")
	var in strings.Builder
	in.WriteString("id,user,amount,issued_at,note\n")
	for i := range 40 {
		fmt.Fprintf(&in, "%d,u%d,%d.5,2023-01-%02d 10:00:00,\"note, %d\"\n", i, i%7, i, 1+i%28, i)
	}
	for _, reads := range [][]string{{"amount"}, {"note", "id"}, {"user"}, nil} {
		f, err := Open(writeTemp(t, "r.csv", []byte(in.String())), Options{Schema: schema, CheckValues: true, ChunkBytes: 64, Reads: reads})
		if err != nil {
			t.Fatal(err)
		}
		read := map[int]bool{schema.User(): true}
		for _, c := range reads {
			read[schema.Index(c)] = true
		}
		var row feature.Row
		n := 0
		_, err = f.Scan(context.Background(), 1, func(b *Batch) error {
			for i := 0; i < b.Len(); i++ {
				for j := range row.Fields {
					row.Fields[j] = []byte("junk") // what the row's last holder may have left
				}
				b.Row(i, &row)
				n++
				for j := range schema.Len() {
					want := string(b.Field(i, j))
					if reads != nil && !read[j] {
						if want != "" {
							return fmt.Errorf("reads %v: column %d of a row is %q in the batch, want it left out", reads, j, want)
						}
					}
					if got := string(row.Fields[j]); got != want {
						return fmt.Errorf("reads %v, line %d: Row's column %d is %q, Field's %q", reads, b.Line(i), j, got, want)
					}
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n != 40 {
			t.Fatalf("reads %v: %d rows, want 40", reads, n)
		}
	}
}
