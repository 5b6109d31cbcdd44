package csvread

import (
	"math/rand/v2"
	"testing"
)

// countControlBytes is countControl one byte at a time, as checkText was.
func countControlBytes(b []byte) (ctrl, nul int) {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			ctrl++
			if c == 0 {
				nul++
			}
		}
	}
	return ctrl, nul
}

func TestCountControl(t *testing.T) {
	every := make([]byte, 0, 256*3)
	for i := range 256 {
		every = append(every, byte(i), 'x', byte(255-i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 10007)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		in   []byte
		ctrl int // -1: whatever the byte loop says
		nul  int
	}{
		{"empty", nil, 0, 0},
		{"text", []byte("id,user,amount\n1,a,2.50\r\n2,b,\t3\n"), 0, 0},
		{"short control", []byte{1, 0, '\n'}, 2, 1},
		{"controls across words", []byte("abcdefg\x01\x00hijklmnop\x1f\x7f\x80\xff\x20\x19tail\x00"), 5, 2},
		{"UTF-16", append([]byte{0xff, 0xfe}, []byte("i\x00d\x00,\x00u\x00\n\x00")...), 5, 5},
		{"every byte", every, -1, 0},
		{"random", random, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCtrl, wantNul := countControlBytes(tc.in)
			if tc.ctrl >= 0 && (wantCtrl != tc.ctrl || wantNul != tc.nul) {
				t.Fatalf("byte loop: %d control, %d NUL; the table says %d, %d", wantCtrl, wantNul, tc.ctrl, tc.nul)
			}
			// Every alignment and length: the words and the tail.
			for lo := range min(len(tc.in), 9) {
				for hi := len(tc.in); hi >= lo && hi > len(tc.in)-9; hi-- {
					in := tc.in[lo:hi]
					c, n := countControl(in)
					wc, wn := countControlBytes(in)
					if c != wc || n != wn {
						t.Fatalf("countControl(in[%d:%d]) = %d, %d; want %d, %d", lo, hi, c, n, wc, wn)
					}
				}
			}
		})
	}
}

func FuzzCountControl(f *testing.F) {
	f.Add([]byte("id,user\n1,a\r\n"))
	f.Add([]byte{0, 1, 2, '\t', '\n', '\r', 0x1f, 0x20, 0x7f, 0x80, 0xe0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n := countControl(b)
		wc, wn := countControlBytes(b)
		if c != wc || n != wn {
			t.Fatalf("countControl(%q) = %d, %d; want %d, %d", b, c, n, wc, wn)
		}
	})
}

// BenchmarkCountControl counts the control bytes of a 1 MiB head of
// invoice rows, as every file's Open does.
func BenchmarkCountControl(b *testing.B) {
	head := genInvoices(1<<20, true)[:1<<20]
	b.SetBytes(int64(len(head)))
	for _, bc := range []struct {
		name string
		fn   func([]byte) (int, int)
	}{{"bytes", countControlBytes}, {"words", countControl}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(head)))
			for b.Loop() {
				if c, _ := bc.fn(head); c != 0 {
					b.Fatal(c)
				}
			}
		})
	}
}
