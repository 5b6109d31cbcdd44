package inram

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestOrderBySize checks the counting sort against a stable sort by rows,
// most first: the same order, ties in first-appearance order.
func TestOrderBySize(t *testing.T) {
	sizes := func(ns ...uint32) []user {
		us := make([]user, len(ns))
		for i, n := range ns {
			us[i].n = n
		}
		return us
	}
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]uint32, 5000)
	for i := range random {
		random[i] = uint32(1 + r.IntN(8)) // most users: a few rows
		if r.IntN(100) == 0 {
			random[i] = uint32(200 + r.IntN(100000)) // a few big ones, across countedRows
		}
	}
	for _, tc := range []struct {
		name  string
		users []user
	}{
		{"none", nil},
		{"one", sizes(3)},
		{"small ties", sizes(1, 2, 1, 3, 2, 1)},
		{"boundary", sizes(countedRows-1, countedRows, countedRows+1, countedRows-1, countedRows, 1)},
		{"big ties", sizes(1000, 5, 1000, 70000, 5, 1000)},
		{"random", sizes(random...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := make([]int32, len(tc.users))
			for i := range want {
				want[i] = int32(i)
			}
			slices.SortStableFunc(want, func(a, b int32) int { return int(tc.users[b].n) - int(tc.users[a].n) })
			if got := orderBySize(tc.users); !slices.Equal(got, want) {
				t.Errorf("orderBySize = %v, want %v", got, want)
			}
		})
	}
}
