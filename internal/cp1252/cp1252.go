// Package cp1252 decodes Windows-1252 text, the encoding most invoice
// files come in, to UTF-8 into a buffer the caller reuses: the CSV reader
// decodes a cp1252 file's fields with it, and the built-in features a
// receiver's name.
package cp1252

import (
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// AppendUTF8 appends src, Windows-1252 text, to dst as UTF-8, as
// charmap.Windows1252's decoder does: the five bytes the code page leaves
// undefined become U+FFFD.
func AppendUTF8(dst, src []byte) []byte {
	for _, c := range src {
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			continue
		}
		dst = utf8.AppendRune(dst, charmap.Windows1252.DecodeByte(c))
	}
	return dst
}
