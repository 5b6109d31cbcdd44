package gen

import (
	"bytes"
	"math"
	"math/rand/v2"
)

// Shapes of the values.
const (
	// Issuers other than the bank: P(rank k) ∝ (zipfV + k)^-zipfS.
	zipfS, zipfV = 1.25, 6.0
	// Amounts in cents are exp(N(mu, sigma)): a median of 2,500.00 for
	// ordinary issuers, 150.00 for the bank's fees.
	amountMu, amountSigma         = 12.43, 1.4
	bankAmountMu, bankAmountSigma = 9.6, 1.1
	maxCents                      = 5_000_000_000 // 50 million; sums of 10^8 rows stay far from overflow
	// repeatCustomers: an issuer's invoices go to one of its few regular
	// receivers this often (in percent), otherwise to anyone.
	repeatCustomersPct = 50
	suffixPct          = 35
)

// users are the issuers, in both encodings: users[0] is the bank when
// there is a heavy issuer.
type users struct {
	n   int
	ids [2][]byte   // [encIndex] all ids, concatenated
	off [2][]uint32 // [encIndex] id i is ids[off[i]:off[i+1]]
}

func newUsers(n int, seed uint64, heavy bool) *users {
	u := &users{n: n}
	salt := mix64(seed ^ saltUsers)
	for e := 0; e < 2; e++ {
		u.ids[e] = make([]byte, 0, n*14)
		u.off[e] = make([]uint32, 1, n+1)
	}
	bank := [2][]byte{encodeRFC(bankID, 0), encodeRFC(bankID, 1)}
	for i := 0; i < n; i++ {
		for e := 0; e < 2; e++ {
			if heavy && i == 0 {
				u.ids[e] = append(u.ids[e], bank[e]...)
			} else {
				x := uint64(i)
				start := len(u.ids[e])
				u.ids[e] = appendRFC(u.ids[e], x, salt, e)
				if heavy && string(u.ids[e][start:]) == string(bank[e]) {
					// Never give an ordinary issuer the bank's id: take
					// a number no other issuer has.
					u.ids[e] = appendRFC(u.ids[e][:start], x+uint64(n), salt, e)
				}
			}
			u.off[e] = append(u.off[e], uint32(len(u.ids[e])))
		}
	}
	return u
}

func encodeRFC(s string, e int) []byte {
	if e == 1 {
		return []byte(s)
	}
	p, err := newPhrase(s)
	if err != nil {
		panic(err.Error())
	}
	return p.enc[0]
}

func (u *users) id(i int32, e int) []byte { return u.ids[e][u.off[e][i]:u.off[e][i+1]] }

// UTF8 returns issuer i's id in UTF-8.
func (u *users) utf8(i int32) string { return string(u.id(i, 1)) }

// generator holds what every worker reads: the plan and the tables.
type generator struct {
	o         Options
	text      *text
	users     *users
	files     []*fileSpec
	receivers uint64 // the receivers' id space
}

// userAcc is one issuer's good rows and amount in a chunk or a file.
type userAcc struct {
	user  int32
	rows  int64
	cents int64
}

// chunkOut is a generated chunk: its bytes and its truth.
type chunkOut struct {
	buf       *[]byte
	users     []userAcc
	rows, bad int64 // good and bad data rows
	multiline int64 // good rows whose description holds a line break
}

// worker generates chunks; it is used by one goroutine at a time.
type worker struct {
	g *generator
	// Dense per-issuer accumulators, reset after each chunk through
	// touched, so a chunk costs its rows, not the number of issuers.
	rows, cents []int64
	touched     []int32
}

func newWorker(g *generator) *worker {
	return &worker{g: g, rows: make([]int64, g.users.n), cents: make([]int64, g.users.n)}
}

// chunkRand returns chunk c of file f's random stream.
func chunkRand(seed uint64, file, c int, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(seed^salt), mix64(uint64(file)<<32|uint64(c))))
}

// heavyBefore returns how many of a file's first k rows the bank issues.
func heavyBefore(k int64, share float64) int64 { return int64(float64(k) * share) }

// chunk generates rows [start, end) of file f, appending to buf, with
// random stream r.
func (w *worker) chunk(f *fileSpec, start, end int64, r *rand.Rand, out *chunkOut) {
	g := w.g
	e := encIndex(f.enc)
	eol := f.eol()
	buf := *out.buf
	heavy := g.o.HeavyShare > 0
	bankLeft := heavyBefore(end, g.o.HeavyShare) - heavyBefore(start, g.o.HeavyShare)
	nOthers := uint64(g.users.n)
	if heavy {
		nOthers--
	}
	zipf := rand.NewZipf(r, zipfS, zipfV, nOthers-1)
	receiverSalt := mix64(g.o.Seed ^ saltReceiver)
	var pos [numColumns + 1]int
	for k := start; k < end; k++ {
		// Draw every value first, in a fixed order, then write them in
		// the file's column order.
		d := w.draw(f, r, zipf, heavy, &bankLeft, end-k)
		bad, user, cents, second := d.bad, d.user, d.cents, d.second
		buf = w.appendRow(buf, f, e, eol, &d, receiverSalt, &pos)
		if bad {
			// Too few or too many fields, never an open quote: the
			// malformed row must not swallow its neighbours.
			if r.IntN(2) == 0 {
				keep := 1 + r.IntN(len(f.cols)-1)
				buf = buf[:pos[keep]-1]
			} else {
				for n := 1 + r.IntN(2); n > 0; n-- {
					buf = append(buf, f.delim)
					buf = append(buf, g.text.extra[r.IntN(len(g.text.extra))].enc[e]...)
				}
			}
			out.bad++
		} else {
			out.rows++
			if second >= 0 {
				out.multiline++
			}
			if w.rows[user] == 0 {
				w.touched = append(w.touched, user)
			}
			w.rows[user]++
			w.cents[user] += cents
		}
		buf = append(buf, eol...)
	}
	*out.buf = buf
	out.users = out.users[:0]
	for _, u := range w.touched {
		out.users = append(out.users, userAcc{user: u, rows: w.rows[u], cents: w.cents[u]})
		w.rows[u], w.cents[u] = 0, 0
	}
	w.touched = w.touched[:0]
}

// rowDraw is one row's drawn values.
type rowDraw struct {
	user                  int32
	isBank, bad           bool
	id1, id2, receiver    uint64
	secs                  uint64
	cents                 int64
	currency              string
	subject               phrase
	suffix, second, extra int
}

// draw draws one row's values in their fixed order; left is how many rows
// of the chunk are left, bankLeft how many of them the bank issues.
func (w *worker) draw(f *fileSpec, r *rand.Rand, zipf *rand.Zipf, heavy bool, bankLeft *int64, left int64) rowDraw {
	g := w.g
	var d rowDraw
	d.isBank = *bankLeft > 0 && r.Int64N(left) < *bankLeft
	switch {
	case d.isBank:
		d.user = 0
		*bankLeft--
	case heavy:
		d.user = int32(1 + zipf.Uint64())
	default:
		d.user = int32(zipf.Uint64())
	}
	d.bad = f.badShare > 0 && r.Float64() < f.badShare
	d.id1, d.id2 = r.Uint64(), r.Uint64()
	if r.Uint64N(100) < repeatCustomersPct {
		d.receiver = mix64(uint64(d.user)<<4|r.Uint64N(8)) % g.receivers
	} else {
		d.receiver = r.Uint64N(g.receivers)
	}
	d.secs = r.Uint64N(f.monthSecs)
	if d.isBank {
		d.cents = int64(math.Exp(bankAmountMu + bankAmountSigma*r.NormFloat64()))
	} else {
		d.cents = int64(math.Exp(amountMu + amountSigma*r.NormFloat64()))
	}
	d.currency = "MXN"
	if !d.isBank {
		switch c := r.Uint64N(100); {
		case c >= 98:
			d.currency = "EUR"
			d.cents /= 20
		case c >= 92:
			d.currency = "USD"
			d.cents /= 18
		}
	}
	d.cents = min(max(d.cents, 1), maxCents)
	if d.isBank {
		d.subject = g.text.bankSubjects[r.IntN(len(g.text.bankSubjects))]
	} else {
		d.subject = g.text.subjects[r.IntN(len(g.text.subjects))]
	}
	d.suffix, d.second = -1, -1
	if r.Uint64N(100) < suffixPct {
		d.suffix = r.IntN(len(g.text.suffixes))
	}
	if f.multiline > 0 && r.Float64() < f.multiline && !d.bad {
		d.second = r.IntN(len(g.text.secondLines))
	}
	d.extra = r.IntN(len(g.text.extra))

	return d
}

// appendRow writes a drawn row's fields in the file's column order,
// recording where each starts in pos.
func (w *worker) appendRow(buf []byte, f *fileSpec, e int, eol []byte, d *rowDraw, receiverSalt uint64, pos *[numColumns + 1]int) []byte {
	g := w.g
	for j, c := range f.cols {
		if j > 0 {
			buf = append(buf, f.delim)
		}
		pos[j] = len(buf)
		switch c {
		case colInvoiceID:
			buf = appendUUID(buf, d.id1, d.id2)
		case colIssuer:
			buf = append(buf, g.users.id(d.user, e)...)
		case colReceiver:
			buf = appendRFC(buf, d.receiver, receiverSalt, e)
		case colIssuedAt:
			if f.date == dateSpace {
				buf = appendTime(buf, f.month, d.secs)
			} else {
				buf = appendDate(buf, f, d.secs)
			}
		case colAmount:
			if f.amount == amountPlain {
				buf = appendCents(buf, d.cents)
			} else {
				buf = appendAmount(buf, f.amount, d.cents, d.currency, e)
				if bytes.IndexByte(buf[pos[j]:], f.delim) >= 0 {
					// Quoted, as a spreadsheet writes 1,234.56 in a
					// comma-separated file; amounts hold no quote.
					buf = append(buf, 0, 0)
					copy(buf[pos[j]+1:], buf[pos[j]:len(buf)-2])
					buf[pos[j]] = '"'
					buf[len(buf)-1] = '"'
				}
			}
		case colCurrency:
			buf = append(buf, d.currency...)
		case colDescription:
			buf = w.appendDescription(buf, f, e, eol, d.subject, d.suffix, d.second)
		case colExtra:
			buf = append(buf, g.text.extra[d.extra].enc[e]...)
		}
	}
	return buf
}

func (w *worker) appendDescription(buf []byte, f *fileSpec, e int, eol []byte, subject phrase, suffix, second int) []byte {
	t := w.g.text
	special := subject.special
	if suffix >= 0 {
		special |= t.suffixes[suffix].special
	}
	if second >= 0 {
		special |= hasNewline
	}
	if special&(f.delimBit|hasQuote|hasNewline) == 0 {
		buf = append(buf, subject.enc[e]...)
		if suffix >= 0 {
			buf = append(buf, t.suffixes[suffix].enc[e]...)
		}
		return buf
	}
	buf = append(buf, '"')
	buf = appendQuoted(buf, subject.enc[e])
	if suffix >= 0 {
		buf = appendQuoted(buf, t.suffixes[suffix].enc[e])
	}
	if second >= 0 {
		buf = append(buf, eol...)
		buf = appendQuoted(buf, t.secondLines[second].enc[e])
	}
	return append(buf, '"')
}

// appendQuoted appends s with each double quote doubled (RFC 4180).
func appendQuoted(dst, s []byte) []byte {
	for _, c := range s {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return dst
}

const hexUpper = "0123456789ABCDEF"

// appendUUID appends a version 4 UUID made of a and b, upper case, as CFDI
// folios are written.
func appendUUID(dst []byte, a, b uint64) []byte {
	a = a&^(0xf<<12) | 0x4<<12 // version 4
	b = b&^(0x3<<62) | 0x2<<62 // variant 10
	for i := 15; i >= 0; i-- {
		dst = append(dst, hexUpper[a>>(4*uint(i))&0xf])
		if i == 8 || i == 4 || i == 0 {
			dst = append(dst, '-')
		}
	}
	for i := 15; i >= 0; i-- {
		dst = append(dst, hexUpper[b>>(4*uint(i))&0xf])
		if i == 12 {
			dst = append(dst, '-')
		}
	}
	return dst
}

// appendTime appends "YYYY-MM-DD hh:mm:ss" for secs seconds into the month
// whose "YYYY-MM-" prefix is month.
func appendTime(dst, month []byte, secs uint64) []byte {
	dst = append(dst, month...)
	day := secs / 86400
	s := secs % 86400
	dst = append2(dst, int(day)+1)
	dst = append(dst, ' ')
	dst = append2(dst, int(s/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(s/60%60))
	dst = append(dst, ':')
	return append2(dst, int(s%60))
}

// appendCents appends a non-negative number of cents as a decimal with 2
// fraction digits.
func appendCents(dst []byte, cents int64) []byte {
	dst = appendUint(dst, uint64(cents/100))
	dst = append(dst, '.')
	return append2(dst, int(cents%100))
}

func appendUint(dst []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v >= 10 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	tmp[i] = byte('0' + v)
	return append(dst, tmp[i:]...)
}

// formatCents writes cents as a decimal with 2 fraction digits, with a
// sign when negative.
func formatCents(cents int64) string {
	var b []byte
	if cents < 0 {
		b = append(b, '-')
		return string(appendCents(b, -cents))
	}
	return string(appendCents(b, cents))
}
