package civil

import (
	"testing"
	"time"
)

// TestDays checks Days, Date and DaysIn against the time package for
// every day of years -400 to 10400.
func TestDays(t *testing.T) {
	day := time.Date(-400, 1, 1, 0, 0, 0, 0, time.UTC)
	z := day.Unix() / 86400
	for ; day.Year() < 10400; day, z = day.AddDate(0, 0, 1), z+1 {
		y, m, d := day.Year(), int(day.Month()), day.Day()
		if got := Days(y, m, d); got != z {
			t.Fatalf("Days(%d, %d, %d) = %d, want %d", y, m, d, got, z)
		}
		if gy, gm, gd := Date(z); gy != y || gm != m || gd != d {
			t.Fatalf("Date(%d) = %d-%d-%d, want %d-%d-%d", z, gy, gm, gd, y, m, d)
		}
		if d == 1 {
			if want := day.AddDate(0, 1, -1).Day(); DaysIn(y, m) != want {
				t.Fatalf("DaysIn(%d, %d) = %d, want %d", y, m, DaysIn(y, m), want)
			}
		}
	}
	// A day past the month's end runs into the next.
	if Days(2024, 2, 30) != Days(2024, 3, 1) {
		t.Error("Days(2024, 2, 30) is not March 1st")
	}
}
