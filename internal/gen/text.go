package gen

import (
	"fmt"

	"golang.org/x/text/encoding/charmap"

	"github.com/mce-engine/mce/engine/feature"
)

// The text the generator writes. Every string must be representable in
// cp1252; newText checks that.
var (
	// subjects open a description of an ordinary issuer.
	subjects = []string{
		"Servicios de consultoría",
		"Compra de artículos de oficina",
		"Reparación de maquinaria en Peñón",
		"Mantenimiento preventivo de montacargas",
		"Honorarios por asesoría contable y fiscal",
		"Arrendamiento de local comercial",
		"Suministro de energía eléctrica",
		"Transporte de mercancía terrestre",
		"Diseño gráfico y publicación en línea",
		"Capacitación en seguridad e higiene",
		"Venta de piñatas y artículos para fiesta",
		"Renta de grúa con operador",
		"Alimentos y bebidas para evento",
		"Cuota de mantenimiento del condominio",
		"Papelería, tóner y cartuchos",
		"Servicio de limpieza de oficinas",
		"Fletes y maniobras en Ciudad Juárez",
		"Material eléctrico: cable, contactos y apagadores",
		"Desarrollo de software a la medida",
		"Pintura e impermeabilización de azotea",
		"Compra de café orgánico de Oaxaca",
		"Consulta médica y análisis clínicos",
		"Colegiatura del mes, nivel secundaria",
		"Refacciones automotrices para camión",
		"Hospedaje en hotel, Mérida, Yucatán",
		"Publicidad en radio \"La Voz del Bajío\"",
		"Instalación de aire acondicionado",
		"Artículos de ferretería y tornillería",
		"Uniformes bordados para el personal",
		"Servicio de vigilancia nocturna",
	}
	// bankSubjects open a description of the bank's invoices.
	bankSubjects = []string{
		"Comisión por manejo de cuenta",
		"Comisión por transferencia SPEI",
		"Intereses ordinarios del crédito",
		"IVA de comisión por anualidad",
		"Comisión por cheque devuelto",
		"Intereses moratorios, pago extemporáneo",
		"Comisión por uso de cajero automático",
		"Servicio de banca electrónica",
	}
	// suffixes are added to some descriptions.
	suffixes = []string{
		" para la compañía",
		" en Peñón de los Baños",
		", según contrato",
		" (pedido \"Año Nuevo\")",
		"; pago en parcialidades",
		" — entrega en León, Gto.",
		" del período de diciembre",
		", incluye IVA",
		" a crédito, 30 días",
		" según cotización en €",
		" ref|A-12",
		" — niño Dios, temporada navideña",
		" para la Compañía Minera del Norte",
		" “urgente”",
	}
	// secondLines follow a line break inside some quoted descriptions.
	secondLines = []string{
		"Observaciones: entrega en almacén",
		"Nota: pagar antes del día 15",
		"Atención: señor González",
	}
	// extraValues fill the extra column some messy files carry.
	extraValues = []string{"G01", "G03", "P01", "S01", "I04", "D01", "CP01"}
)

// Special characters a text may hold, as bits: a field holding the file's
// delimiter, a quote or a line break must be quoted.
const (
	hasComma = 1 << iota
	hasSemicolon
	hasPipe
	hasTab
	hasQuote
	hasNewline
)

func delimBit(d byte) uint8 {
	switch d {
	case ',':
		return hasComma
	case ';':
		return hasSemicolon
	case '|':
		return hasPipe
	case '\t':
		return hasTab
	}
	panic(fmt.Sprintf("BUG: delimiter %q", d))
}

// phrase is one piece of text in both encodings, with the special
// characters it holds.
type phrase struct {
	enc     [2][]byte // [encIndex(enc)]
	special uint8
}

// encIndex maps an encoding to its slot in the [2] arrays: 0 cp1252, 1 UTF-8.
func encIndex(e feature.Encoding) int {
	if e == feature.EncodingUTF8 {
		return 1
	}
	return 0
}

// text is the generator's encoded vocabulary; built once per Run and only
// read afterwards.
type text struct {
	subjects, bankSubjects, suffixes, secondLines, extra []phrase
}

func newText() (*text, error) {
	t := &text{}
	for _, l := range []struct {
		dst *[]phrase
		src []string
	}{
		{&t.subjects, subjects},
		{&t.bankSubjects, bankSubjects},
		{&t.suffixes, suffixes},
		{&t.secondLines, secondLines},
		{&t.extra, extraValues},
	} {
		for _, s := range l.src {
			p, err := newPhrase(s)
			if err != nil {
				return nil, err
			}
			*l.dst = append(*l.dst, p)
		}
	}
	return t, nil
}

func newPhrase(s string) (phrase, error) {
	cp, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return phrase{}, fmt.Errorf("BUG: text %q has no cp1252 form: %w", s, err)
	}
	p := phrase{enc: [2][]byte{cp, []byte(s)}}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			p.special |= hasComma
		case ';':
			p.special |= hasSemicolon
		case '|':
			p.special |= hasPipe
		case '\t':
			p.special |= hasTab
		case '"':
			p.special |= hasQuote
		case '\n', '\r':
			p.special |= hasNewline
		}
	}
	return p, nil
}

// RFC-like ids. A real RFC is 3 letters (a company) or 4 letters (a
// person), a date YYMMDD and a 3-character check code ("homoclave"). The
// letters may include Ñ and &.
//
// An id is built from a number x: the date and the check code come from a
// bijection of x, so distinct numbers below rfcSpace give distinct ids;
// the letters come from a hash of x.
const (
	rfcYears  = 66 // 1940-1999 and 2000-2005
	rfcDates  = rfcYears * 12 * 28
	rfcChecks = 36 * 36 * 36
	rfcSpace  = rfcDates * rfcChecks // about 1.03e9 distinct ids
	// rfcMul is coprime with rfcSpace, so x*rfcMul mod rfcSpace is a
	// bijection that scatters consecutive numbers.
	rfcMul = 1_000_003
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// letterTable maps a byte of hash to a letter: mostly A-Z, about 1% each Ñ
// and &. Entries are the letter's index in letters.
var letterTable = func() (t [256]uint8) {
	for i := range t {
		switch {
		case i >= 253:
			t[i] = 27 // &
		case i >= 250:
			t[i] = 26 // Ñ
		default:
			t[i] = uint8(i % 26)
		}
	}
	return t
}()

// letters in cp1252 and UTF-8; Ñ is one byte (0xD1) in cp1252, two in UTF-8.
var letters = [2][28][]byte{
	func() (l [28][]byte) {
		for i := 0; i < 26; i++ {
			l[i] = []byte{byte('A' + i)}
		}
		l[26] = []byte{0xD1}
		l[27] = []byte{'&'}
		return l
	}(),
	func() (l [28][]byte) {
		for i := 0; i < 26; i++ {
			l[i] = []byte{byte('A' + i)}
		}
		l[26] = []byte("Ñ")
		l[27] = []byte{'&'}
		return l
	}(),
}

// appendRFC appends the id of number x (below rfcSpace) in encoding slot
// e, salted by salt so that issuers and receivers look different.
func appendRFC(dst []byte, x, salt uint64, e int) []byte {
	h := mix64(x ^ salt)
	n := 3 + int(h&1) // a company or a person
	h >>= 1
	for i := 0; i < n; i++ {
		dst = append(dst, letters[e][letterTable[uint8(h)]]...)
		h >>= 8
	}
	y := (x*rfcMul + salt) % rfcSpace
	d, c := y/rfcChecks, y%rfcChecks
	yy := d / (12 * 28)
	if yy < 60 {
		yy += 40
	} else {
		yy -= 60
	}
	mm := d/28%12 + 1
	dd := d%28 + 1
	dst = append2(dst, int(yy))
	dst = append2(dst, int(mm))
	dst = append2(dst, int(dd))
	return append(dst, alnum[c/1296], alnum[c/36%36], alnum[c%36])
}

// mix64 is the splitmix64 finaliser: a cheap, good 64-bit hash.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const digits2 = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// append2 appends v (0-99) as two digits.
func append2(dst []byte, v int) []byte {
	return append(dst, digits2[2*v], digits2[2*v+1])
}
