package inram

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestStream_sameAsGroup checks that aggregating as rows come gives byte
// for byte the features of grouping every user's rows first, with and
// without a re-keying Map, on any number of workers and batch orders.
func TestStream_sameAsGroup(t *testing.T) {
	rows := invoiceRows(40000, 2000, 0.13, 21)
	byReceiver := func(r *feature.Row, p feature.Params) ([]byte, bool) {
		if r.Fields[4][0] == '-' {
			return nil, false
		}
		return r.Fields[2], true
	}
	for _, tc := range []struct {
		name string
		mapf feature.MapFunc
	}{{"by user", nil}, {"Map by receiver", byReceiver}} {
		spec := feature.Invoice()
		spec.Map = tc.mapf
		want, wst, err := run(t, spec, Options{Workers: 1, Group: true}, batches(rows, 333, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2, 5, 16} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				got, st, err := run(t, spec, Options{Workers: workers}, batches(rows, 97, uint64(workers)))
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("streamed features differ from grouped ones:\n%s", firstDiff(got, want))
				}
				if st.Rows != wst.Rows || st.Users != wst.Users || st.Dropped != wst.Dropped {
					t.Errorf("stats rows/users/dropped %d/%d/%d, grouped %d/%d/%d",
						st.Rows, st.Users, st.Dropped, wst.Rows, wst.Users, wst.Dropped)
				}
				if len(st.WorkerBusy) != workers {
					t.Errorf("busy times for %d workers, want %d", len(st.WorkerBusy), workers)
				}
			})
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// TestStream_errorsNameUserAndLine: an error or a panic in Add fails the
// job with the row's user and line; a panic in Finish names the user.
func TestStream_errorsNameUserAndLine(t *testing.T) {
	rows := invoiceRows(5000, 50, 0.2, 23)
	line := map[string]int64{} // first line of each user
	for i := len(rows) - 1; i >= 0; i-- {
		line[string(rows[i][1])] = int64(i + 2)
	}
	for _, tc := range []struct {
		name string
		agg  func(feature.Aggregator) feature.Aggregator
		want string
		line bool
	}{
		{"error in Add", func(a feature.Aggregator) feature.Aggregator { return failingAgg{a} }, "no luck", true},
		{"panic in Add", func(a feature.Aggregator) feature.Aggregator { return panickyAgg{a} }, "panic: add boom", true},
		{"panic in Finish", func(a feature.Aggregator) feature.Aggregator { return finishPanicAgg{a} }, "panic: finish boom", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := feature.Invoice()
			mk := spec.NewAggregator
			spec.NewAggregator = func(u *feature.User) feature.Aggregator {
				if string(u.Key) == "USR000003" {
					return tc.agg(mk(u))
				}
				return mk(u)
			}
			// One batch in file order, so the first row seen is the
			// user's first line.
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			j, err := New(Options{Spec: &spec, Workers: 3, File: "mar.csv"})
			if err != nil {
				t.Fatal(err)
			}
			err = j.Add(batches(rows, len(rows), 1)[0])
			if err == nil {
				_, err = j.Finish(context.Background(), bufio.NewWriter(io.Discard))
			}
			var ue *UserError
			if !errors.As(err, &ue) || ue.User != "USR000003" || ue.File != "mar.csv" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q of user USR000003 in mar.csv", err, tc.want)
			}
			if tc.line && ue.Line != line["USR000003"] {
				t.Errorf("line %d, want %d (the user's first row)", ue.Line, line["USR000003"])
			}
		})
	}
}

type panickyAgg struct{ feature.Aggregator }

func (panickyAgg) Add(*feature.Row) error { panic("add boom") }

type finishPanicAgg struct{ feature.Aggregator }

func (finishPanicAgg) Finish(*feature.Record) error { panic("finish boom") }
