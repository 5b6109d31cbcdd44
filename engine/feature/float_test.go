package feature

import (
	"math"
	"strconv"
	"testing"
)

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{
		0, math.Copysign(0, -1), 1, -1, 0.5, 0.0001, -0.0001, 0.00005, 0.1 + 0.2, 1.5e-5,
		123.45, 9.5, 1000, 1234.5678, 1234.56789, 999999.9999, 1e6, -1e6, 1234567.5,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(),
		float64(1<<53) / 1e4, 0.1, 0.3, 2.675, 100.10, 42.0001, 99999.99995,
	} {
		want := strconv.AppendFloat(nil, f, 'g', -1, 64)
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %q, want %q", f, got, want)
		}
	}
	// Every amount of cents and ten-thousandths around the fast path's
	// edges, and sums of amounts.
	for _, n := range []int64{0, 1, 9, 10, 99, 100, 9999, 10000, 10001, 123456, 9999999999, 10000000000} {
		for _, d := range []int64{-1, 0, 1} {
			for _, sign := range []int64{1, -1} {
				f := float64(sign*(n+d)) / 1e4
				want := strconv.AppendFloat(nil, f, 'g', -1, 64)
				if got := AppendFloat(nil, f); string(got) != string(want) {
					t.Errorf("AppendFloat(%d/1e4) = %q, want %q", sign*(n+d), got, want)
				}
			}
		}
	}
}

// FuzzAppendFloat checks AppendFloat against strconv on any float, and on
// any decimal of four fraction digits.
func FuzzAppendFloat(f *testing.F) {
	f.Add(uint64(0x405edccccccccccd), int64(12345))
	f.Add(math.Float64bits(0.1+0.2), int64(-99999999))
	f.Fuzz(func(t *testing.T, bits uint64, n int64) {
		for _, x := range []float64{math.Float64frombits(bits), float64(n) / 1e4, float64(n%1e10) / 1e4, float64(n) / 100} {
			want := strconv.AppendFloat(nil, x, 'g', -1, 64)
			if got := AppendFloat(nil, x); string(got) != string(want) {
				t.Fatalf("AppendFloat(%v) = %q, want %q", x, got, want)
			}
		}
	})
}

func BenchmarkAppendFloat(b *testing.B) {
	vals := []float64{123.45, 9.5, 1000, 0.1 + 0.2, 355.7142857142857, 1234.5678}
	var dst []byte
	for _, name := range []string{"AppendFloat", "strconv"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, v := range vals {
					if name == "strconv" {
						dst = strconv.AppendFloat(dst[:0], v, 'g', -1, 64)
					} else {
						dst = AppendFloat(dst[:0], v)
					}
				}
			}
		})
	}
}
