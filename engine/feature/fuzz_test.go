package feature

import (
	"errors"
	"testing"
	"time"
)

// refFastTime is ParseTime's fast path as it was written with time.Date,
// the reference for fastUnix's calendar arithmetic.
func refFastTime(b []byte) (time.Time, bool) {
	if (len(b) != 19 && len(b) != 10) || b[4] != '-' || b[7] != '-' {
		return time.Time{}, false
	}
	y, ok1 := digits(b[0:4])
	mo, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:10])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	if len(b) == 10 {
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC), true
	}
	if (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	h, ok4 := digits(b[11:13])
	mi, ok5 := digits(b[14:16])
	s, ok6 := digits(b[17:19])
	if !ok4 || !ok5 || !ok6 || h >= 24 || mi >= 60 || s >= 61 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
	return t, t.Day() == d
}

// nanoRange reports whether t.UnixNano() holds t: 1677-09-21 to
// 2262-04-11, told by time's own arithmetic.
func nanoRange(t time.Time) bool { return time.Unix(0, t.UnixNano()).Equal(t) }

// FuzzParseTime checks that ParseTime never panics, that its arithmetic
// fast path agrees with time.Date on every input it takes, and that
// parseUnixNano agrees with ParseTime on the times int64 nanoseconds hold
// and refuses the others.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-02-29 23:59:59", "2023-02-29T00:00:00", "2024-12-31 23:59:60", "0000-01-01", "9999-12-31 23:59:59", "2024-01-31", "2024-02-30", "2024-03-01T10:11:12Z", "2024-03-01 10:11:12.5", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseTime(b)
		sec, fast := fastUnix(b)
		ref, refOK := refFastTime(b)
		if fast != refOK || fast && sec != ref.Unix() {
			t.Fatalf("fastUnix(%q) = %d, %v; time.Date gives %d, %v", b, sec, fast, ref.Unix(), refOK)
		}
		if fast && (err != nil || !got.Equal(ref)) {
			t.Fatalf("ParseTime(%q) = %v, %v; want %v", b, got, err, ref)
		}
		ns, err2 := parseUnixNano(b)
		if err == nil && !nanoRange(got) {
			if !errors.Is(err2, errTimeRange) {
				t.Fatalf("parseUnixNano(%q) = %d, %v; ParseTime gives %v, which UnixNano cannot hold", b, ns, err2, got)
			}
			return
		}
		if (err == nil) != (err2 == nil) || err == nil && ns != got.UnixNano() {
			t.Fatalf("parseUnixNano(%q) = %d, %v; ParseTime gives %d, %v", b, ns, err2, got.UnixNano(), err)
		}
	})
}

// TestFastUnix_everyByte changes every byte of a few times to every value
// and checks fastUnix against its reference: the word-at-a-time checks
// must refuse exactly what the byte-at-a-time ones did.
func TestFastUnix_everyByte(t *testing.T) {
	for _, s := range []string{"2024-02-29 23:59:59", "1999-12-31T23:59:60", "0000-01-01 00:00:00", "9999-12-31 23:59:59", "2024-07-21 06:34:38", "2024-12-31"} {
		for i := range len(s) {
			for c := range 256 {
				b := []byte(s)
				b[i] = byte(c)
				sec, ok := fastUnix(b)
				ref, refOK := refFastTime(b)
				if ok != refOK || ok && sec != ref.Unix() {
					t.Fatalf("fastUnix(%q) = %d, %v; time.Date gives %d, %v", b, sec, ok, ref.Unix(), refOK)
				}
			}
		}
	}
}
