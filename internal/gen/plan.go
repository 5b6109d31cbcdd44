package gen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// Limits and shapes of the data.
const (
	maxUsers = 5_000_000
	// chunkRows is the number of rows one worker generates at a time
	// (about 1.2 MB); chunk boundaries are part of the output's definition.
	chunkRows = 8192
	// sizeStep is the ratio between the sizes of consecutive files.
	sizeStep = 0.88
	// firstYear and firstMonth date file 0; file i is i months earlier.
	firstYear, firstMonth = 2024, 12
	// bankID is the heavy issuer, a bank.
	bankID = "BNM840515VB1"
	// multilineShare is the share of descriptions with a line break in
	// messy files.
	multilineShare = 1.0 / 4000
	// extraColumn is the name of the column some messy files add.
	extraColumn = "uso_cfdi"
	// Salts of the random streams, so that streams of different purposes
	// never coincide.
	saltUsers    = 0x5553455253 // "USERS"
	saltReceiver = 0x52454345
	saltPlan     = 0x504c414e
	saltChunk    = 0x43484e4b
	saltSample   = 0x53414d50
)

// column is what a column of a file holds.
type column uint8

const (
	colInvoiceID column = iota
	colIssuer
	colReceiver
	colIssuedAt
	colAmount
	colCurrency
	colDescription
	colExtra
	numColumns
)

// canonical names of the columns, in feature.InvoiceSchema order.
var canonical = [numColumns]string{
	feature.ColInvoiceID, feature.ColIssuer, feature.ColReceiver, feature.ColIssuedAt,
	feature.ColAmount, feature.ColCurrency, feature.ColDescription, extraColumn,
}

// aliases are other header names messy files use; each is one the reader
// knows (internal/csvread DefaultAliases).
var aliases = [numColumns][]string{
	colInvoiceID:   {"folio", "uuid", "id"},
	colIssuer:      {"rfc_emisor", "emisor", "issuer_rfc", "issuer_id"},
	colReceiver:    {"rfc_receptor", "receptor", "receiver_rfc"},
	colIssuedAt:    {"fecha_emision", "fecha", "issue_time"},
	colAmount:      {"importe", "total", "monto"},
	colCurrency:    {"moneda", "ccy"},
	colDescription: {"concepto", "descripcion"},
}

// fileSpec is everything about one file except its rows' content.
type fileSpec struct {
	index       int
	name        string // base name, with the compression suffix
	month       []byte // "YYYY-MM-"
	monthSecs   uint64 // seconds in the month
	year, mon   int
	monthStart  int64 // Unix seconds at the month's start
	rows        int64 // data rows, bad ones included
	chunks      int
	delim       byte
	delimBit    uint8
	enc         feature.Encoding
	crlf        bool
	compression string
	cols        []column // in file order
	header      []string
	shuffled    bool
	multiline   float64 // share of descriptions with a line break
	badShare    float64
	amount      amountStyle // with Options.ValueStyles
	date        dateStyle
}

func (f *fileSpec) eol() []byte {
	if f.crlf {
		return []byte("\r\n")
	}
	return []byte("\n")
}

// headerLine is the header as written, line ending included.
func (f *fileSpec) headerLine() []byte {
	var b bytes.Buffer
	for i, h := range f.header {
		if i > 0 {
			b.WriteByte(f.delim)
		}
		b.WriteString(h)
	}
	b.Write(f.eol())
	return b.Bytes()
}

// planFiles returns the files' specs without their row counts.
func planFiles(o *Options) []*fileSpec {
	r := rand.New(rand.NewPCG(o.Seed, saltPlan))
	n := o.Files
	files := make([]*fileSpec, n)
	for i := range files {
		y, m := firstYear, firstMonth-i
		for m < 1 {
			m += 12
			y--
		}
		days := daysIn(y, m)
		f := &fileSpec{
			index:       i,
			name:        fmt.Sprintf("invoices_%04d_%02d.csv", y, m),
			month:       []byte(fmt.Sprintf("%04d-%02d-", y, m)),
			monthSecs:   uint64(days) * 86400,
			year:        y,
			mon:         m,
			monthStart:  time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC).Unix(),
			delim:       o.Delimiter,
			enc:         o.Encoding,
			compression: o.Compression,
			cols:        []column{colInvoiceID, colIssuer, colReceiver, colIssuedAt, colAmount, colCurrency, colDescription},
			badShare:    o.BadRowShare,
		}
		files[i] = f
	}
	if o.Compression == CompressMixed {
		for _, f := range files {
			f.compression = CompressNone
		}
	}
	if o.Messy {
		planMessy(r, o, files)
	} else if o.Compression == CompressMixed {
		role := roles(r, n)
		files[role(0)].compression = CompressGzip
		if n > 1 {
			files[role(1)].compression = CompressZstd
		}
	}
	if o.ValueStyles {
		planStyles(o, files)
	}
	for _, f := range files {
		f.delimBit = delimBit(f.delim)
		if f.header == nil {
			f.header = make([]string, len(f.cols))
			for j, c := range f.cols {
				f.header[j] = canonical[c]
			}
		}
		switch f.compression {
		case CompressGzip:
			f.name += ".gz"
		case CompressZstd:
			f.name += ".zst"
		}
	}
	return files
}

// roles returns a function that picks the file for the k-th role: distinct
// files for the first roles, the largest file last, wrapping around when
// there are more roles than files.
func roles(r *rand.Rand, n int) func(k int) int {
	perm := r.Perm(n)
	// Keep file 0, the largest, plain and simple when there are other
	// files to vary: the demo's biggest file then stays the fast case.
	for i, p := range perm {
		if p == 0 {
			perm[i], perm[n-1] = perm[n-1], perm[i]
		}
	}
	return func(k int) int { return perm[k%n] }
}

// planMessy varies the files as real deliveries vary.
func planMessy(r *rand.Rand, o *Options, files []*fileSpec) {
	n := len(files)
	// Delimiters: file 0 gets the asked one, the others rotate through
	// the rest in a seeded order.
	delims := []byte{',', ';', '|', '\t'}
	for i, d := range delims {
		if d == o.Delimiter {
			delims[0], delims[i] = delims[i], delims[0]
		}
	}
	rest := delims[1:]
	r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	other := feature.EncodingUTF8
	if o.Encoding == feature.EncodingUTF8 {
		other = feature.EncodingCP1252
	}
	for i, f := range files {
		f.delim = delims[i%len(delims)]
		if i%2 == 1 {
			f.enc = other
		}
		f.multiline = multilineShare
	}
	role := roles(r, n)
	// Role 0: CRLF. Roles 1 and 2: gzip and zstd (when mixed). Roles 3
	// and 4: shuffled columns. Roles 1 and 5: an extra column. Role 2:
	// an upper-case header.
	files[role(0)].crlf = true
	if o.Compression == CompressMixed {
		files[role(1)].compression = CompressGzip
		if n > 1 {
			files[role(2)].compression = CompressZstd
		}
	}
	extra := map[int]bool{role(1): true, role(5): true}
	shuffle := map[int]bool{role(3): true, role(4): true}
	upper := role(2)
	for i, f := range files {
		if extra[i] {
			at := 1 + r.IntN(len(f.cols))
			f.cols = append(f.cols[:at], append([]column{colExtra}, f.cols[at:]...)...)
		}
		if shuffle[i] {
			before := fmt.Sprint(f.cols)
			for fmt.Sprint(f.cols) == before {
				r.Shuffle(len(f.cols), func(a, b int) { f.cols[a], f.cols[b] = f.cols[b], f.cols[a] })
			}
			f.shuffled = true
		}
		f.header = make([]string, len(f.cols))
		for j, c := range f.cols {
			name := canonical[c]
			// File 0 keeps canonical names; the others mostly use aliases.
			if i > 0 && len(aliases[c]) > 0 && r.Float64() < 0.7 {
				name = aliases[c][r.IntN(len(aliases[c]))]
			}
			if i == upper && n > 1 {
				name = strings.ToUpper(name)
			}
			f.header[j] = name
		}
	}
}

// daysIn returns the days of month m of year y: day 0 of the next month
// is its last.
func daysIn(y, m int) int { return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// fileWeights returns each file's share of the total: file i weighs
// sizeStep^i.
func fileWeights(n int) []float64 {
	w := make([]float64, n)
	sum, x := 0.0, 1.0
	for i := range w {
		w[i] = x
		sum += x
		x *= sizeStep
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// splitRows splits total rows over files by weight, exactly.
func splitRows(total int64, w []float64) []int64 {
	rows := make([]int64, len(w))
	var used int64
	for i := range w {
		rows[i] = int64(float64(total) * w[i])
		used += rows[i]
	}
	// Hand out what rounding left, largest files first, so sizes stay
	// in descending order.
	for i := 0; used < total; i = (i + 1) % len(rows) {
		rows[i]++
		used++
	}
	return rows
}
