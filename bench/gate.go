package bench

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// DefaultRelTol is the relative tolerance for the float features (mean and
// standard deviation), which each system computes in its own order.
// Everything else must be equal.
const DefaultRelTol = 1e-9

// maxShownDiffs is how many differing rows a MismatchError shows.
const maxShownDiffs = 5

// Diff is one row on which two systems disagree.
type Diff struct {
	Key       Key
	Field     string // the first differing field, or "row" when one side lacks the row
	Want, Got string // the whole rows, formatted
}

// MismatchError says that a system's features differ from the reference.
type MismatchError struct {
	Ref, System string
	Compared    FieldSet
	Rows        int // rows compared
	Count       int // rows that differ
	First       []Diff
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s disagrees with %s on %d of %d rows (fields: %s); first differences:",
		e.System, e.Ref, e.Count, e.Rows, fieldList(e.Compared))
	for _, d := range e.First {
		fmt.Fprintf(&b, "\n  file %s user %q: %s differs\n    %-9s %s\n    %-9s %s",
			d.Key.File, d.Key.User, d.Field, e.Ref+":", d.Want, e.System+":", d.Got)
	}
	return b.String()
}

func fieldList(s FieldSet) string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.String())
	}
	return strings.Join(names, ",")
}

// Compare checks got against ref on the fields both compute: the same
// (file, user) rows, equal integers, amounts, times and names, and floats
// within relTol (relative; absolute below 1). A field one side leaves
// empty must be empty on the other. It returns a *MismatchError when they
// disagree.
func Compare(ref, got *Features, relTol float64) error {
	e := &MismatchError{Ref: ref.System, System: got.System, Compared: ref.Fields & got.Fields}
	e.add(ref, got, relTol)
	if e.Count > 0 {
		return e
	}
	return nil
}

// add compares got with ref on e.Compared, as Compare does, and adds the
// rows compared and those that differ to e: the gate compares one input
// file at a time, in the order of their names, so the rows come in the
// same order as from one Compare of every file.
func (e *MismatchError) add(ref, got *Features, relTol float64) {
	keys := make(map[Key]bool, len(ref.Rows))
	for k := range ref.Rows {
		keys[k] = true
	}
	for k := range got.Rows {
		keys[k] = true
	}
	sorted := make([]Key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].File != sorted[j].File {
			return sorted[i].File < sorted[j].File
		}
		return sorted[i].User < sorted[j].User
	})
	e.Rows += len(sorted)
	for _, k := range sorted {
		w, g := ref.Rows[k], got.Rows[k]
		field := ""
		switch {
		case w == nil:
			field = "row (only in " + got.System + ")"
		case g == nil:
			field = "row (only in " + ref.System + ")"
		default:
			field = firstDiff(w, g, e.Compared, relTol)
		}
		if field == "" {
			continue
		}
		e.Count++
		if len(e.First) < maxShownDiffs {
			e.First = append(e.First, Diff{Key: k, Field: field, Want: formatValue(w, e.Compared), Got: formatValue(g, e.Compared)})
		}
	}
}

// firstDiff names the first field on which w and g differ, or "".
func firstDiff(w, g *Value, fields FieldSet, relTol float64) string {
	for _, f := range fields.Fields() {
		if w.Set.Has(f) != g.Set.Has(f) {
			return f.String()
		}
		if !w.Set.Has(f) {
			continue
		}
		var same bool
		switch f {
		case FieldCount:
			same = w.Count == g.Count
		case FieldDistinct:
			same = w.Distinct == g.Distinct
		case FieldBadRows:
			same = w.BadRows == g.BadRows
		case FieldTotal:
			same = w.Total == g.Total
		case FieldMin:
			same = w.Min == g.Min
		case FieldMax:
			same = w.Max == g.Max
		case FieldTopAmount:
			same = w.TopAmount == g.TopAmount
		case FieldFirst:
			same = w.First == g.First
		case FieldLast:
			same = w.Last == g.Last
		case FieldTop:
			same = w.Top == g.Top
		case FieldMean:
			same = closeEnough(w.Mean, g.Mean, relTol)
		case FieldStd:
			same = closeEnough(w.Std, g.Std, relTol)
		}
		if !same {
			return f.String()
		}
	}
	return ""
}

func closeEnough(a, b, relTol float64) bool {
	if a == b {
		return true
	}
	scale := math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
	return math.Abs(a-b) <= relTol*scale
}

// formatValue writes the compared fields of v in column order, for
// messages; a missing row is "(none)" and an empty field is empty.
func formatValue(v *Value, fields FieldSet) string {
	if v == nil {
		return "(none)"
	}
	var parts []string
	for _, f := range fields.Fields() {
		s := ""
		if v.Set.Has(f) {
			switch f {
			case FieldCount:
				s = fmt.Sprint(v.Count)
			case FieldDistinct:
				s = fmt.Sprint(v.Distinct)
			case FieldBadRows:
				s = fmt.Sprint(v.BadRows)
			case FieldTotal:
				s = formatUnits(v.Total)
			case FieldMin:
				s = formatUnits(v.Min)
			case FieldMax:
				s = formatUnits(v.Max)
			case FieldTopAmount:
				s = formatUnits(v.TopAmount)
			case FieldMean:
				s = fmt.Sprint(v.Mean)
			case FieldStd:
				s = fmt.Sprint(v.Std)
			case FieldFirst:
				s = time.Unix(0, v.First).UTC().Format(time.RFC3339)
			case FieldLast:
				s = time.Unix(0, v.Last).UTC().Format(time.RFC3339)
			case FieldTop:
				s = v.Top
			}
		}
		parts = append(parts, f.String()+"="+s)
	}
	return strings.Join(parts, " ")
}
