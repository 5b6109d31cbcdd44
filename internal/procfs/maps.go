package procfs

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// Mapping is one line of /proc/self/maps: an anonymous mapping has no
// file.
type Mapping struct {
	Start, End uintptr
	RW, Anon   bool
}

// Mappings returns this process's memory mappings (/proc/self/maps), in
// address order.
func Mappings() ([]Mapping, error) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	return parseMaps(b), nil
}

// parseMaps reads the lines of a maps file; lines it cannot read are
// skipped.
func parseMaps(b []byte) []Mapping {
	var out []Mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 5 {
			continue
		}
		dash := bytes.IndexByte(f[0], '-')
		if dash < 0 {
			continue
		}
		s, err1 := strconv.ParseUint(string(f[0][:dash]), 16, 64)
		e, err2 := strconv.ParseUint(string(f[0][dash+1:]), 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Mapping{
			Start: uintptr(s), End: uintptr(e),
			RW:   bytes.HasPrefix(f[1], []byte("rw")),
			Anon: len(f) == 5 && string(f[4]) == "0",
		})
	}
	return out
}
