package feature

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// benchAmounts returns n amounts with 2 fraction digits (exponential, a
// mean of 2,500.00), each written by write.
func benchAmounts(n int, write func(cents int64) string) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		cents := int64(r.ExpFloat64()*250000) + 1
		out[i] = []byte(write(cents))
	}
	return out
}

func plainCents(c int64) string {
	return strconv.FormatInt(c/100, 10) + "." + strconv.FormatInt(100+c%100, 10)[1:]
}

func commaCents(c int64) string {
	s := plainCents(c)
	intp, frac := s[:len(s)-3], s[len(s)-2:]
	var out []byte
	for i := range intp {
		if i > 0 && (len(intp)-i)%3 == 0 {
			out = append(out, '.')
		}
		out = append(out, intp[i])
	}
	return string(out) + "," + frac
}

func totalBytes(vs [][]byte) int64 {
	n := 0
	for _, v := range vs {
		n += len(v)
	}
	return int64(n)
}

// BenchmarkParseAmount compares today's parsers of the plain format with
// ParseAmount on the same values, and ParseAmount on other formats. One
// op parses 1024 values; MB/s counts their bytes.
func BenchmarkParseAmount(b *testing.B) {
	plain := benchAmounts(1024, plainCents)
	eu := benchAmounts(1024, commaCents)
	dollar := benchAmounts(1024, func(c int64) string { return "$ " + commaCents(c) })
	run := func(name string, vs [][]byte, parse func(v []byte) bool) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(totalBytes(vs))
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range vs {
					if !parse(v) {
						b.Fatalf("%q", v)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vs)), "ns/value")
		})
	}
	run("old=ParseDecimal/plain", plain, func(v []byte) bool {
		_, err := ParseDecimal(v, AmountDigits)
		return err == nil
	})
	run("new=ParseAmount.Decimal/plain/format=plain", plain, func(v []byte) bool {
		a, ok := ParseAmount(v, numberPlain)
		_, err := a.Decimal(AmountDigits)
		return ok && err == nil
	})
	run("new=ParseAmount.Decimal/plain/format=point", plain, func(v []byte) bool {
		a, ok := ParseAmount(v, numberPoint)
		_, err := a.Decimal(AmountDigits)
		return ok && err == nil
	})
	run("new=NumberFormat.ParseDecimal/plain/format=point", plain, func(v []byte) bool {
		_, err := numberPoint.ParseDecimal(v, AmountDigits)
		return err == nil
	})
	run("new=ParseAmount.Decimal/1.234,56/format=comma", eu, func(v []byte) bool {
		a, ok := ParseAmount(v, numberComma)
		_, err := a.Decimal(AmountDigits)
		return ok && err == nil
	})
	run("new=ParseAmount.Decimal/$_1,234.56/format=comma", dollar, func(v []byte) bool {
		a, ok := ParseAmount(v, numberComma)
		_, err := a.Decimal(AmountDigits)
		return ok && err == nil
	})
	run("old=strconv.ParseFloat/plain", plain, func(v []byte) bool {
		_, err := strconv.ParseFloat(unsafeString(v), 64)
		return err == nil
	})
	run("new=ParseAmount.Float/plain/format=point", plain, func(v []byte) bool {
		a, ok := ParseAmount(v, numberPoint)
		_ = a.Float()
		return ok
	})
	run("new=SniffAmounts.Add/1.234,56", eu, func(v []byte) bool {
		var s NumberSniffer
		s.Add(v)
		return true
	})
}

// BenchmarkParseDate compares ParseTime with ParseDate on the generator's
// form and ParseDate on the other layouts.
func BenchmarkParseDate(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	write := func(layout string) [][]byte {
		out := make([][]byte, 1024)
		for i := range out {
			t := base.Add(time.Duration(r.Int64N(31*86400)) * time.Second)
			if layout == "epoch" {
				out[i] = strconv.AppendInt(nil, t.Unix(), 10)
			} else {
				out[i] = t.AppendFormat(nil, layout)
			}
		}
		return out
	}
	iso := write(time.DateTime)
	run := func(name string, vs [][]byte, parse func(v []byte) error) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(totalBytes(vs))
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range vs {
					if err := parse(v); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vs)), "ns/value")
		})
	}
	run("old=ParseTime/2006-01-02_15:04:05", iso, func(v []byte) error { _, err := ParseTime(v); return err })
	run("new=ParseDate/2006-01-02_15:04:05/format=ISO", iso, func(v []byte) error { _, err := ParseDate(v, DateFormat{}); return err })
	run("new=ParseDate/02/01/2006_15:04:05/format=DMY", write("02/01/2006 15:04:05"), func(v []byte) error {
		_, err := ParseDate(v, DateFormat{Layout: DateDMY})
		return err
	})
	run("new=ParseDate/epoch/format=epoch", write("epoch"), func(v []byte) error {
		_, err := ParseDate(v, DateFormat{Layout: DateEpoch})
		return err
	})
	run("old=ParseTime/2006-01-02T15:04:05Z", write(time.RFC3339), func(v []byte) error { _, err := ParseTime(v); return err })
	run("new=ParseDate/2006-01-02T15:04:05Z/format=ISO", write(time.RFC3339), func(v []byte) error {
		_, err := ParseDate(v, DateFormat{})
		return err
	})
}
