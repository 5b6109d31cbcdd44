package filejob

import (
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/internal/csvread"
)

func TestPlan(t *testing.T) {
	tasks, err := planInputs([]csvread.Input{
		{Path: "/a/jan.csv", Size: 10},
		{Path: "/b/jan.csv.gz", Size: 30},
		{Path: "/c/feb.tsv", Size: 20},
		{Path: "/d/jan.csv", Size: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, tk := range tasks {
		if tk.ID != i || tk.Kind != Kind {
			t.Errorf("task %d: %+v", i, tk)
		}
		got = append(got, tk.Input+" "+tk.Output)
	}
	want := []string{
		"/b/jan.csv.gz jan.csv.features.csv",
		"/c/feb.tsv feb.tsv.features.csv",
		"/a/jan.csv jan.csv-2.features.csv",
		"/d/jan.csv jan.csv-3.features.csv",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tasks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChooseMode(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		mode      string
		mergeable bool
		input     string
		size, mem int64
		want      string
	}{
		{ModeAuto, true, "/d/jan.csv", 1 * gib, 8 * gib, ModeGroup},
		{ModeAuto, true, "/d/jan.csv", 4 * gib, 8 * gib, ModeStream},    // 5 GiB of rows > half of 8
		{ModeAuto, true, "/d/jan.csv.gz", 1 * gib, 8 * gib, ModeStream}, // ~10 GiB once decompressed
		{ModeAuto, true, "/d/jan.csv.zst", 100 << 20, 8 * gib, ModeGroup},
		{ModeAuto, false, "/d/jan.csv", 40 * gib, 8 * gib, ModeGroup}, // only a mergeable set can stream
		{ModeAuto, true, "/d/jan.csv", 40 * gib, 0, ModeGroup},        // no limit known
		{ModeGroup, true, "/d/jan.csv", 40 * gib, 8 * gib, ModeGroup},
		{ModeStream, true, "/d/jan.csv", 1, 8 * gib, ModeStream},
		{ModeStream, false, "/d/jan.csv", 1, 8 * gib, ModeGroup},
	} {
		if got := chooseMode(tc.mode, tc.mergeable, tc.input, tc.size, tc.mem); got != tc.want {
			t.Errorf("chooseMode(%s, mergeable %v, %s, %d MiB, limit %d MiB) = %s, want %s",
				tc.mode, tc.mergeable, tc.input, tc.size>>20, tc.mem>>20, got, tc.want)
		}
	}
}
