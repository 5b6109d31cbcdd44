package output

import (
	"bytes"
	"io"
	"strings"

	"github.com/mce-engine/mce/engine/feature"
)

// Header returns the features file's header line: `user,<columns>\n`,
// with the Spec's KeyName, when it has one, instead of user.
func Header(spec *feature.Spec) string {
	key := spec.KeyName
	if key == "" {
		key = DefaultKeyName
	}
	return header(spec, key)
}

// header returns the header line with the key column named key.
func header(spec *feature.Spec, key string) string {
	var b strings.Builder
	b.WriteString(string(AppendCSVField(nil, []byte(key))))
	for _, c := range spec.Columns {
		b.WriteByte(',')
		b.WriteString(string(AppendCSVField(nil, []byte(c.Name))))
	}
	b.WriteByte('\n')
	return b.String()
}

// AppendRecord appends one features line (key, then every feature of rec,
// then '\n') to dst, its times in UTC ("…Z"). scratch is reused for
// formatting and returned.
func AppendRecord(dst, scratch, key []byte, rec *feature.Record) (line, scratchOut []byte) {
	return LineFormat{}.AppendRecord(dst, scratch, key, rec)
}

// LineFormat is how a job formats the features lines it writes to a
// table: as AppendRecord does, or with its times' "Z" left out.
type LineFormat struct {
	// Local leaves the "Z" of the times out: the lines of a CSV table of
	// local times, which its Writer (told by LinesFor) passes as they are.
	Local bool
}

// LinesFor returns the format of the lines w takes. For an *Writer of a
// CSV table of local times (SetLocalTimes), asked before its first Write,
// that is the times without their "Z": the Writer then passes the lines
// as they are, instead of walking every line to drop it. For anything
// else, the lines of AppendRecord. Call it at most once per Writer, after
// SetLocalTimes; the lines given to w must then be made with the result.
func LinesFor(w io.Writer) LineFormat {
	tw, ok := w.(*Writer)
	if !ok || tw.started || !tw.local || tw.o.Format != CSV {
		return LineFormat{}
	}
	tw.localLines = true
	return LineFormat{Local: true}
}

// AppendRecord appends one features line as AppendRecord does, with the
// "Z" of its times left out when f says so: the bytes appendLocalLine
// makes of AppendRecord's line.
func (f LineFormat) AppendRecord(dst, scratch, key []byte, rec *feature.Record) (line, scratchOut []byte) {
	dst = AppendCSVField(dst, key)
	for i, c := range rec.Columns() {
		dst = append(dst, ',')
		switch c.Type {
		case feature.TypeString:
			scratch = rec.AppendField(scratch[:0], i)
			dst = AppendCSVField(dst, scratch)
		case feature.TypeTime:
			// RFC 3339 in UTC, never quoted.
			at := len(dst)
			dst = rec.AppendField(dst, i)
			if f.Local && len(dst) > at && dst[len(dst)-1] == 'Z' {
				dst = dst[:len(dst)-1]
			}
		default: // numbers never need quoting
			dst = rec.AppendField(dst, i)
		}
	}
	return append(dst, '\n'), scratch
}

// AppendCSVField appends f to dst as one CSV field, quoted (with inner
// quotes doubled) when it holds a comma, a quote or a line break.
func AppendCSVField(dst, f []byte) []byte {
	if !needsQuotes(f) {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	for {
		i := bytes.IndexByte(f, '"')
		if i < 0 {
			break
		}
		dst = append(dst, f[:i+1]...)
		dst = append(dst, '"')
		f = f[i+1:]
	}
	dst = append(dst, f...)
	return append(dst, '"')
}

// needsQuotes reports whether f holds a comma, a quote or a line break: a
// loop, which on short fields beats bytes.IndexAny's set building.
func needsQuotes(f []byte) bool {
	for _, c := range f {
		if c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}
