package csvread

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/procfs"
)

// benchFiles holds the generated benchmark inputs, written once per test
// binary and removed by TestMain.
var benchFiles struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFiles.dir != "" {
		os.RemoveAll(benchFiles.dir)
	}
	os.Exit(code)
}

// genInvoices writes a file like the generator's: n bytes of invoice rows
// with Spanish descriptions; quoted puts every description in quotes with a
// comma inside.
func genInvoices(n int, quoted bool) []byte {
	words := []string{"servicio", "consultoría", "mantenimiento", "papelería", "año", "piñata", "café",
		"transporte", "renta", "oficina", "equipo", "cómputo", "limpieza", "señalización", "diseño"}
	var b bytes.Buffer
	b.Grow(n + 256)
	b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
	x := uint64(88172645463325252)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := 0; b.Len() < n; i++ {
		r := next()
		user := r % 50000
		if r%100 < 13 {
			user = 1 // the heavy issuer
		}
		fmt.Fprintf(&b, "%08X-%04X,AAA%06d%03X,BBB%06d%03X,2024-%02d-%02dT%02d:%02d:%02d,%d.%02d,MXN,",
			i, r>>48, user, user%4096, r>>20%300000, (r>>40)%4096, r%12+1, r>>8%28+1, r>>16%24, r>>24%60, r>>32%60,
			r>>12%100000, r%100)
		if quoted {
			b.WriteByte('"')
		}
		for k := range 3 + r%4 {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[(r>>(k*4))%uint64(len(words))])
		}
		if quoted {
			b.WriteString(", mes ")
			b.WriteByte(byte('1' + r%9))
			b.WriteByte('"')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func benchFile(b *testing.B, name string, quoted bool) string {
	benchFiles.once.Do(func() {
		benchFiles.dir, benchFiles.err = os.MkdirTemp("", "csvread-bench")
		if benchFiles.err != nil {
			return
		}
		for _, q := range []bool{false, true} {
			data := genInvoices(64<<20, q)
			if benchFiles.err = os.WriteFile(filepath.Join(benchFiles.dir, fmt.Sprint(q)), data, 0o644); benchFiles.err != nil {
				return
			}
		}
	})
	if benchFiles.err != nil {
		b.Fatal(benchFiles.err)
	}
	return filepath.Join(benchFiles.dir, fmt.Sprint(quoted))
}

// BenchmarkScan reads a 64 MiB generated invoice file from the page cache
// with one parser goroutine (the splitter, which reads and cuts blocks,
// runs beside it). MB/s is wall-clock throughput; MB/cpu-s divides by the
// CPU time of the whole process, the figure per core.
func BenchmarkScan(b *testing.B) {
	for _, c := range []struct {
		name    string
		quoted  bool
		workers int
	}{{"plain", false, 1}, {"quoted", true, 1}, {"plain/workers=2", false, 2}} {
		b.Run(c.name, func(b *testing.B) {
			path := benchFile(b, c.name, c.quoted)
			st, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var rows int64
			cpu0, cpuOK := procfs.CPUTime()
			for b.Loop() {
				f, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				s, err := f.Scan(context.Background(), c.workers, func(bt *Batch) error {
					for i := range bt.Len() {
						_ = bt.User(i)
					}
					return nil
				})
				f.Close()
				if err != nil || s.BadRows != 0 {
					b.Fatalf("%v, %d bad rows", err, s.BadRows)
				}
				rows = s.Rows
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			if cpu1, ok := procfs.CPUTime(); ok && cpuOK && cpu1 > cpu0 {
				// Throughput per CPU-second of the whole process (splitter,
				// parsers and GC): the figure per core.
				b.ReportMetric(float64(st.Size())*float64(b.N)/1e6/(cpu1-cpu0).Seconds(), "MB/cpu-s")
			}
		})
	}
}

// BenchmarkNormalize checks and copies the bench's kind of amounts and
// times, as appendFields does for every row of a file whose values are
// checked.
func BenchmarkNormalize(b *testing.B) {
	for _, c := range []struct {
		name string
		norm normalizer
		vals []string
	}{
		{"amount", amountNormalizer(feature.NumberFormat{}), []string{"40.55", "16101.62", "7", "-3.5", "1234567.89"}},
		{"date", dateNormalizer(feature.DateFormat{}), []string{"2024-07-21 06:34:38", "2024-07-31 17:20:52", "2024-07-01T00:00:00", "2024-12-31"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			vals := make([][]byte, len(c.vals))
			n := 0
			for i, v := range c.vals {
				vals[i] = []byte(v)
				n += len(v)
			}
			b.SetBytes(int64(n))
			dst := make([]byte, 0, 256)
			for b.Loop() {
				dst = dst[:0]
				for _, v := range vals {
					var ok bool
					if dst, ok = c.norm(dst, v); !ok {
						b.Fatalf("%q does not read", v)
					}
				}
			}
		})
	}
}

// BenchmarkOpen opens a generated invoice file with the built-in
// features' options, as `mce run` does, and closes it: what every file's
// start costs before its scan, on one CPU (reading the first MiB,
// sniffing the encoding, the delimiter and the amounts' and dates'
// formats).
func BenchmarkOpen(b *testing.B) {
	spec := feature.Invoice()
	opts := Options{Schema: spec.Schema, Reads: spec.Reads, CheckValues: true}
	for _, c := range []struct {
		name   string
		quoted bool
	}{{"plain", false}, {"quoted", true}} {
		b.Run(c.name, func(b *testing.B) {
			path := benchFile(b, c.name, c.quoted)
			b.SetBytes(sniffBytes)
			b.ReportAllocs()
			for b.Loop() {
				f, err := Open(path, opts)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
