package feature

import (
	"errors"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	// want is the value as DateTime.AppendFormat writes it, "" for an
	// error.
	f := func(in string, df DateFormat, want string) {
		t.Helper()
		got, err := ParseDate([]byte(in), df)
		s := ""
		if err == nil {
			s = string(got.AppendFormat(nil))
		}
		if s != want {
			t.Errorf("ParseDate(%q, %v) = %q, %v; want %q", in, df, s, err, want)
		}
	}
	iso := DateFormat{}
	// ISO: what ParseTime reads, with whether it had a zone.
	f("2024-01-15 13:45:12", iso, "2024-01-15T13:45:12")
	f("2024-01-15T13:45:12", iso, "2024-01-15T13:45:12")
	f("2024-01-15", iso, "2024-01-15")
	f("2024-01-15T13:45:12Z", iso, "2024-01-15T13:45:12Z")
	f("2024-01-15T13:45:12+01:00", iso, "2024-01-15T12:45:12Z")
	f("2024-01-15 13:45:12-06:00", iso, "2024-01-15T19:45:12Z")
	f("2024-01-15T13:45:12.5Z", iso, "2024-01-15T13:45:12.5Z")
	f("2024-01-15 13:45:12.25", iso, "2024-01-15T13:45:12.25")
	f("2024-02-30", iso, "2024-03-01") // as ParseTime: time.Date's normalising
	f("2023-02-30 10:00:00", iso, "")
	f("2024-13-01", iso, "")
	f("15/01/2024", iso, "")
	f("1675173900", iso, "")
	f("", iso, "")

	dmy := DateFormat{Layout: DateDMY}
	f("31/01/2023", dmy, "2023-01-31")
	f("31/01/2023 14:05", dmy, "2023-01-31T14:05:00")
	f("31/01/2023 14:05:07", dmy, "2023-01-31T14:05:07")
	f("31/01/2023 14:05:07.25", dmy, "2023-01-31T14:05:07.25")
	f("31/01/2023T14:05:00Z", dmy, "2023-01-31T14:05:00Z")
	f("31/01/2023 14:05-06:00", dmy, "2023-01-31T20:05:00Z")
	f("31/01/2023 14:05:00+05:30", dmy, "2023-01-31T08:35:00Z")
	f("31-01-2023", dmy, "2023-01-31")
	f("31.01.2023 9:05", dmy, "2023-01-31T09:05:00")
	f("1/2/2023", dmy, "2023-02-01")
	f("29/02/2024", dmy, "2024-02-29")
	f("29/02/2023", dmy, "")
	f("01/31/2023", dmy, "")
	f("31/01/23", dmy, "")
	f("31/01/20231", dmy, "")
	f("31/01-2023", dmy, "")
	f("031/01/2023", dmy, "")
	f("31/01/2023 24:00", dmy, "")
	f("31/01/2023 14:5", dmy, "")
	f("31/01/2023 14:05:60", dmy, "")
	f("31/01/2023 14:05:00.", dmy, "")
	f("31/01/2023 14:05:00.1234567891", dmy, "2023-01-31T14:05:00.123456789")
	f("31/01/2023 14:05+1", dmy, "")
	f("31/01/2023 14:05 Z", dmy, "")
	f("31/01/2023Z", dmy, "")
	f("31/01/2023 ", dmy, "")

	mdy := DateFormat{Layout: DateMDY}
	f("01/31/2023", mdy, "2023-01-31")
	f("1/31/2023 2:05:00", mdy, "2023-01-31T02:05:00")
	f("12/25/2023T00:00:00-05:00", mdy, "2023-12-25T05:00:00Z")
	f("31/01/2023", mdy, "")

	epoch := DateFormat{Layout: DateEpoch}
	f("1675173900", epoch, "2023-01-31T14:05:00Z")
	f("1675173900.25", epoch, "2023-01-31T14:05:00.25Z")
	f("0", epoch, "1970-01-01T00:00:00Z")
	f("-86400", epoch, "1969-12-31T00:00:00Z")
	f("-1.5", epoch, "1969-12-31T23:59:58.5Z")
	f("99999999999", epoch, "5138-11-16T09:46:39Z")
	f("123456789012", epoch, "")
	f("1.", epoch, "")
	f("1e9", epoch, "")
	f("2023-01-31", epoch, "")
	f("1.0000000001", epoch, "")

	// --tz: the zone of the values that name none.
	cst := time.FixedZone("CST", -6*3600)
	f("31/01/2023 14:05", DateFormat{Layout: DateDMY, Location: cst}, "2023-01-31T20:05:00Z")
	f("31/01/2023 14:05Z", DateFormat{Layout: DateDMY, Location: cst}, "2023-01-31T14:05:00Z")
	f("31/01/2023", DateFormat{Layout: DateDMY, Location: cst}, "2023-01-31T06:00:00Z")
	f("2024-01-15 13:45:12", DateFormat{Location: cst}, "2024-01-15T19:45:12Z")
	f("2024-01-15T13:45:12+01:00", DateFormat{Location: cst}, "2024-01-15T12:45:12Z")
	f("1675173900", DateFormat{Layout: DateEpoch, Location: cst}, "2023-01-31T14:05:00Z")
	f("2024-01-15", DateFormat{Layout: 9}, "")
}

// TestParseDate_SameAsParseTime checks the zero DateFormat against
// ParseTime on the forms mce has always read.
func TestParseDate_SameAsParseTime(t *testing.T) {
	f := func(in string) {
		t.Helper()
		want, wantErr := ParseTime([]byte(in))
		got, err := ParseDate([]byte(in), DateFormat{})
		if (err == nil) != (wantErr == nil) || got.Time != want {
			t.Errorf("ParseDate(%q) = %v, %v; ParseTime gives %v, %v", in, got.Time, err, want, wantErr)
		}
		if err != nil && err.Error() != wantErr.Error() {
			t.Errorf("ParseDate(%q) error %q; ParseTime's %q", in, err, wantErr)
		}
	}
	for _, s := range []string{"2024-01-15 13:45:12", "2024-01-15T13:45:12", "2024-01-15",
		"2024-01-15T13:45:12+01:00", "2024-01-15T13:45:12.5Z", "2024-01-15 13:45:12.25",
		"2024-01-15 13:45:12+01:00", "2024-12-31 10:00:60", "2024-12-31 23:59:60", "2024-02-30",
		"2023-02-30 10:00:00", "2024-13-01", "15/01/2024", "", "x"} {
		f(s)
	}
}

func TestDateLayout_String(t *testing.T) {
	f := func(in string, want DateLayout, wantErr bool) {
		t.Helper()
		got, err := ParseDateLayout(in)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("ParseDateLayout(%q) = %v, %v; want %v, err=%v", in, got, err, want, wantErr)
		}
		if err == nil {
			if back, err := ParseDateLayout(got.String()); err != nil || back != got {
				t.Errorf("ParseDateLayout(%q) = %v, %v", got.String(), back, err)
			}
		}
	}
	f("ISO", DateISO, false)
	f("yyyy-mm-dd", DateISO, false)
	f("DD/MM/YYYY", DateDMY, false)
	f("dd.mm.yyyy", DateDMY, false)
	f("MM/DD/YYYY", DateMDY, false)
	f("mdy", DateMDY, false)
	f("epoch", DateEpoch, false)
	f("unix", DateEpoch, false)
	f("YYYY/MM/DD", 0, true)
	f("", 0, true)
	if s := (DateFormat{Layout: DateDMY, Location: time.FixedZone("CST", -6*3600)}).String(); s != "DD/MM/YYYY in CST" {
		t.Errorf("DateFormat.String = %q", s)
	}
}

func TestSniffDates(t *testing.T) {
	f := func(want DateLayout, wantErr error, samples ...string) {
		t.Helper()
		bs := make([][]byte, len(samples))
		for i, s := range samples {
			bs[i] = []byte(s)
		}
		got, err := SniffDates(bs)
		if !errors.Is(err, wantErr) || err == nil && got != (DateFormat{Layout: want}) {
			t.Errorf("SniffDates(%q) = %v, %v; want %v, %v", samples, got, err, want, wantErr)
		}
	}
	f(DateISO, nil, "2023-01-31T14:05:00", "2023-01-31 14:05:00", "2023-01-31")
	f(DateISO, nil, "2023-01-31T14:05:00Z", "2023-01-31T14:05:00-06:00")
	f(DateDMY, nil, "31/01/2023", "01/02/2023")
	f(DateDMY, nil, "31/01/2023 14:05", "01/02/2023 14:05")
	f(DateDMY, nil, "13.01.2023", "01.02.2023")
	f(DateDMY, nil, "12-1-2023 10:00", "13-1-2023 10:00")
	f(DateMDY, nil, "01/31/2023", "02/01/2023")
	f(DateMDY, nil, "1/31/2023 2:05:00", "2/1/2023 10:00:00")
	f(DateEpoch, nil, "1675173900", "1675173901.5")
	f(DateDMY, nil, "05/05/2023", "06/06/2023") // day = month: either order
	f(DateDMY, nil, "31/01/2023", "31/01/2023", "01/31/2023")
	f(DateISO, nil)
	f(DateISO, nil, "x", "")
	f(DateISO, nil, "20230131") // 8 digits: not taken for Unix seconds
	f(0, ErrAmbiguousDate, "01/02/2023", "03/04/2023")
	f(0, ErrAmbiguousDate, "31/01/2023", "01/31/2023")
	f(0, ErrAmbiguousDate, "2023-01-31", "31/01/2023")
	f(0, ErrAmbiguousDate, "1675173900", "31/01/2023")
}

func TestSniffer_Merge(t *testing.T) {
	var a, b NumberSniffer
	a.Add([]byte("1,234"))
	b.Add([]byte("12,5"))
	if _, err := a.Format(); !errors.Is(err, ErrAmbiguousDecimal) {
		t.Fatalf("one part alone: %v, want ErrAmbiguousDecimal", err)
	}
	a.Merge(&b)
	if nf, err := a.Format(); err != nil || nf.Decimal != ',' {
		t.Errorf("merged = %v, %v; want decimal ','", nf, err)
	}
	var c, d DateSniffer
	c.Add([]byte("01/02/2023"))
	d.Add([]byte("01/31/2023"))
	if _, err := c.Format(); !errors.Is(err, ErrAmbiguousDate) {
		t.Fatalf("one part alone: %v, want ErrAmbiguousDate", err)
	}
	c.Merge(&d)
	if df, err := c.Format(); err != nil || df.Layout != DateMDY {
		t.Errorf("merged = %v, %v; want MM/DD/YYYY", df, err)
	}
}
