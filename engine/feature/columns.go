package feature

// Columns is a run of one user's rows from one file, column by column,
// as a reader that holds them so hands them to the built-in features:
// `mce reduce`, whose store blocks keep the amounts and times as numbers
// (the values [Parsed] carries row by row). Row i's amount is Units[i] in
// units of its Scale-th fraction digit ("-12.50" is -1250 at Scale 2),
// its time Seconds[i] Unix seconds, and its receiver
// Text[Starts[i]:Ends[i]], or Same when every row has the same receiver
// (Starts and Ends are then nil). Encoding is the file's.
//
// Feature sets never see it: [AddRows] hands Columns only to the built-in
// features' aggregator, and every other one gets rows.
type Columns struct {
	N            int
	Units        []int64
	Scale        int
	Seconds      []int64
	Text         []byte
	Starts, Ends []uint32
	Same         []byte
	Encoding     Encoding
}

// receiver returns row i's receiver.
func (c *Columns) receiver(i int) []byte {
	if c.Starts == nil {
		return c.Same
	}
	return c.Text[c.Starts[i]:c.Ends[i]:c.Ends[i]]
}

// ColumnRows is a [Rows] that can hand the current row and the ones that
// follow it in its buffer over at once, as Columns.
type ColumnRows interface {
	Rows
	// Columns fills c with the current row and the rows after it that
	// the reader holds, and moves past them: the next Next returns the
	// row after the last of them. It reports false, and moves nowhere,
	// when it cannot; the current row is then read with Row.
	Columns(c *Columns) bool
}

// columnAdder is an Aggregator that takes Columns: the built-in
// features'.
type columnAdder interface {
	addColumns(c *Columns)
}

// AddRows adds every row of rows to agg, with Add, or as Columns where
// rows is a ColumnRows and agg the built-in features' aggregator, which
// then skips the rows' per-row work (in `mce reduce`, about a tenth of
// the CPU). c is scratch.
func AddRows(agg Aggregator, rows Rows, c *Columns) error {
	cr, _ := rows.(ColumnRows)
	ca, _ := agg.(columnAdder)
	if cr == nil || ca == nil {
		for rows.Next() {
			if err := agg.Add(rows.Row()); err != nil {
				return err
			}
		}
		return nil
	}
	for rows.Next() {
		if cr.Columns(c) {
			ca.addColumns(c)
		} else if err := agg.Add(rows.Row()); err != nil {
			return err
		}
	}
	return nil
}

// addColumns adds c's rows as Add adds each of them, with their amounts
// and times from Parsed.
func (a *invoiceAgg) addColumns(c *Columns) {
	var buf [4 * rcvInline]byte
	if c.Starts != nil {
		a.reserve(int(a.nIn) + c.N)
	}
	for i := range c.N {
		a.n++
		badRow := false
		if v, err := scaleUnits(c.Units[i], c.Scale, AmountDigits); err != nil {
			badRow = true
		} else {
			a.addAmount(v)
			a.addReceiver(utf8Text(buf[:0], c.receiver(i), c.Encoding), v)
		}
		if ns, err := secondsNano(c.Seconds[i]); err != nil {
			badRow = true
		} else {
			a.addTime(ns)
		}
		if badRow {
			a.bad++
		}
	}
}
