package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// IterOptions restricts an Iter or a UserIter.
type IterOptions struct {
	// Files, when not nil, keeps only blocks of these files. Blocks of
	// files that are not live (being deleted, or unknown) are always
	// skipped.
	Files []FileID
	// Columns, when not nil, are the only columns a UserIter's Rows
	// decode (by position in the store's schema); the others' fields are
	// nil. A block of a format 2 store is then not even parsed past its
	// column directory for them.
	Columns []int
	// SecondsOnly makes a UserIter's Rows decode the times a block keeps
	// packed to their seconds only: see Block.SetSecondsOnly.
	SecondsOnly bool
	// AmountsOnly are the columns (by position in the store's schema)
	// whose amounts a UserIter's Rows decode to their units only, when a
	// block keeps them packed: see Block.SetAmountsOnly.
	AmountsOnly []int
	// NoLines makes a UserIter's Rows leave the rows' source lines out
	// (Rows.Line is then 0): see Block.SetNoLines.
	NoLines bool
}

// Iter walks the blocks of a span in key order: by shard, user, file (in
// ingest order), then block. It reads through one bounded pebble iterator
// and decodes nothing until asked. An Iter is not safe for concurrent
// use; make one per goroutine.
//
//	it, err := db.NewIter(ctx, db.ShardSpan(s), nil)
//	defer it.Close()
//	for it.Next() {
//		if it.NewUser() { ... it.User() ... }
//		if err := it.Decode(&blk); err != nil { ... }
//	}
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	db    *DB
	ctx   context.Context
	it    *pebble.Iterator
	keep  []bool // by FileID
	heavy map[string]struct{}

	started bool
	skip    byte // 0, 'u' (skip the rest of the user), 'g' (of the group)
	key     Key
	user    []byte // copy of the current user
	prefix  []byte // the current user's key prefix
	newUser bool
	newGrp  bool
	prevOK  bool
	n       int
	seek    []byte
	err     error
}

// NewIter returns an Iter over span.
func (db *DB) NewIter(ctx context.Context, span Span, opts *IterOptions) (*Iter, error) {
	it := &Iter{db: db, ctx: ctx}
	db.mu.RLock()
	maxID := FileID(0)
	for id := range db.files {
		maxID = max(maxID, id)
	}
	it.keep = make([]bool, maxID+1)
	if opts != nil && opts.Files != nil {
		for _, id := range opts.Files {
			if f, ok := db.files[id]; ok && f.State == FileLive {
				it.keep[id] = true
			}
		}
	} else {
		for id, f := range db.files {
			it.keep[id] = f.State == FileLive
		}
	}
	it.heavy = make(map[string]struct{}, len(db.heavy))
	for u := range db.heavy {
		it.heavy[u] = struct{}{}
	}
	db.mu.RUnlock()
	pit, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: span.Lower, UpperBound: span.Upper})
	if err != nil {
		return nil, db.readErr("new iterator", err)
	}
	it.it = pit
	return it, nil
}

// Next moves to the next block and reports whether there is one.
func (it *Iter) Next() bool {
	if it.err != nil {
		return false
	}
	var valid bool
	switch {
	case !it.started:
		it.started = true
		valid = it.it.First()
	case it.skip == 'u':
		valid = it.it.SeekGE(prefixSuccessor(it.prefix))
	case it.skip == 'g':
		valid = it.seekFile(it.key.File)
	default:
		valid = it.it.Next()
	}
	it.skip = 0
	for {
		if !valid {
			it.err = it.db.readErr(it.reading(), it.it.Error())
			return false
		}
		it.n++
		if it.n%64 == 0 {
			if err := it.ctx.Err(); err != nil {
				it.err = err
				return false
			}
		}
		k, err := DecodeKey(it.it.Key())
		if err != nil {
			it.err = err
			return false
		}
		sameUser := it.prevOK && k.Heavy == it.key.Heavy && k.Shard == it.key.Shard && bytes.Equal(k.User, it.user)
		if !sameUser {
			it.prefix = appendUserPrefix(it.prefix[:0], k.Heavy, k.Shard, k.User)
			if !k.Heavy {
				if _, ok := it.heavy[string(k.User)]; ok {
					// A stale copy of a user that moved to the heavy range.
					it.prevOK = false
					valid = it.it.SeekGE(prefixSuccessor(it.prefix))
					continue
				}
			}
		}
		if int(k.File) >= len(it.keep) || !it.keep[k.File] {
			if !sameUser {
				it.prevOK = false // the prefix now belongs to a user not yet returned
			}
			valid = it.seekFile(k.File)
			continue
		}
		it.newUser = !sameUser
		it.newGrp = !sameUser || k.File != it.key.File
		if !sameUser {
			it.user = append(it.user[:0], k.User...)
		}
		k.User = it.user
		it.key = k
		it.prevOK = true
		return true
	}
}

// seekFile moves past the blocks of file f of the user whose prefix is
// it.prefix.
func (it *Iter) seekFile(f FileID) bool {
	if f == ^FileID(0) {
		return it.it.SeekGE(prefixSuccessor(it.prefix))
	}
	it.seek = binary.BigEndian.AppendUint32(append(it.seek[:0], it.prefix...), uint32(f)+1)
	return it.it.SeekGE(it.seek)
}

// Key returns the current block's key; Key().User is valid until Next.
func (it *Iter) Key() Key { return it.key }

// User returns the current user key, valid until Next.
func (it *Iter) User() []byte { return it.user }

// File returns the current block's file.
func (it *Iter) File() FileID { return it.key.File }

// NewUser reports whether the current block is the first returned of its
// user.
func (it *Iter) NewUser() bool { return it.newUser }

// NewGroup reports whether the current block is the first returned of its
// (user, file).
func (it *Iter) NewGroup() bool { return it.newGrp }

// Value returns the current block's encoded value, valid until Next.
func (it *Iter) Value() ([]byte, error) {
	v, err := it.it.ValueAndErr()
	if err != nil {
		return nil, it.db.readErr("read block "+it.describe(), err)
	}
	return v, nil
}

// Header returns the current block's value header (rows, codec) without
// decompressing it.
func (it *Iter) Header() (ValueHeader, error) {
	v, err := it.Value()
	if err != nil {
		return ValueHeader{}, err
	}
	h, err := ParseValueHeader(v)
	if err != nil {
		return h, fmt.Errorf("block %s: %w", it.describe(), err)
	}
	return h, nil
}

// Decode decompresses and decodes the current block into b.
func (it *Iter) Decode(b *Block) error {
	v, err := it.Value()
	if err != nil {
		return err
	}
	if err := b.DecodeValue(v, it.db.comp); err != nil {
		return fmt.Errorf("block %s: %w", it.describe(), err)
	}
	return nil
}

func (it *Iter) describe() string {
	return fmt.Sprintf("user %q file %d block %d", it.user, it.key.File, it.key.Seq)
}

// reading says what Next was reading when it failed.
func (it *Iter) reading() string {
	if !it.prevOK {
		return "read blocks"
	}
	return "read the blocks after " + it.describe()
}

// SkipUser makes the next Next skip the rest of the current user's blocks
// with one seek.
func (it *Iter) SkipUser() { it.skip = 'u' }

// SkipGroup makes the next Next skip the rest of the current (user, file)
// blocks with one seek.
func (it *Iter) SkipGroup() { it.skip = 'g' }

// Err returns the error that stopped the iteration, if any.
func (it *Iter) Err() error { return it.err }

// Close releases the iterator.
func (it *Iter) Close() error {
	if it.it == nil {
		return it.err
	}
	err := it.it.Close()
	it.it = nil
	if it.err != nil {
		return it.err
	}
	return it.db.readErr("close iterator", err)
}

// UsersOptions restricts a UserIter.
type UsersOptions struct {
	IterOptions
	// ByFile makes a group of each (user, file) instead of each user.
	ByFile bool
	// Block, if set, is where the rows' blocks are decoded: a caller that
	// walks one UserIter after another (a shard, then the next) passes the
	// same Block, and its buffers, grown to the largest block, are reused.
	// Only one UserIter at a time may use it.
	Block *Block
}

// UserIter walks a span group by group (a user, or a user in one file
// with ByFile), and streams each group's rows block by block: memory holds
// one decoded block, whatever the size of the user.
//
//	u, err := db.Users(ctx, db.ShardSpan(s), &store.UsersOptions{ByFile: true})
//	defer u.Close()
//	for u.Next() {
//		rows := u.Rows()
//		for rows.Next() { use(u.User(), rows.File(), rows.Fields()) }
//		if err := rows.Err(); err != nil { ... }
//	}
//	if err := u.Err(); err != nil { ... }
type UserIter struct {
	it      *Iter
	byFile  bool
	state   uint8 // see below
	user    []byte
	file    FileID
	heavy   bool
	rows    Rows
	started bool
}

// UserIter states: where the Iter stands relative to the current group.
const (
	uAtStart   = iota // on the group's first block, not yet read
	uInside           // on a block of the group, rows being read
	uAtNext           // on the next group's first block (rows ran out)
	uExhausted        // no more blocks
)

// Users returns a UserIter over span.
func (db *DB) Users(ctx context.Context, span Span, opts *UsersOptions) (*UserIter, error) {
	var o UsersOptions
	if opts != nil {
		o = *opts
	}
	it, err := db.NewIter(ctx, span, &o.IterOptions)
	if err != nil {
		return nil, err
	}
	u := &UserIter{it: it, byFile: o.ByFile}
	u.rows.u = u
	u.rows.blk = o.Block
	if u.rows.blk == nil {
		u.rows.blk = new(Block)
	}
	u.rows.blk.SetColumns(o.Columns)
	u.rows.blk.SetSecondsOnly(o.SecondsOnly)
	u.rows.blk.SetAmountsOnly(o.AmountsOnly)
	u.rows.blk.SetNoLines(o.NoLines)
	return u, nil
}

// Next moves to the next group, skipping what is left of the current one
// without decoding it.
func (u *UserIter) Next() bool {
	switch {
	case !u.started:
		u.started = true
		if !u.it.Next() {
			u.state = uExhausted
			return false
		}
	case u.state == uExhausted:
		return false
	case u.state == uAtStart || u.state == uInside:
		if u.byFile {
			u.it.SkipGroup()
		} else {
			u.it.SkipUser()
		}
		if !u.it.Next() {
			u.state = uExhausted
			return false
		}
	}
	u.state = uAtStart
	u.user = append(u.user[:0], u.it.user...)
	u.file = u.it.key.File
	u.heavy = u.it.key.Heavy
	u.rows.reset()
	return true
}

// User returns the current group's user key, valid until Next.
func (u *UserIter) User() []byte { return u.user }

// File returns the current group's file with ByFile, else the file of the
// group's first block.
func (u *UserIter) File() FileID { return u.file }

// Heavy reports whether the current user lives in the heavy range.
func (u *UserIter) Heavy() bool { return u.heavy }

// Rows returns the current group's rows. It is reused by every group.
func (u *UserIter) Rows() *Rows { return &u.rows }

// Err returns the error that stopped the iteration, if any.
func (u *UserIter) Err() error { return u.it.Err() }

// Close releases the iterator.
func (u *UserIter) Close() error { return u.it.Close() }

// Rows streams one group's rows in key order: by file, then by the order
// they had in the file.
type Rows struct {
	u      *UserIter
	blk    *Block
	i      int
	loaded bool
	end    bool
	file   FileID
	fields [][]byte
	bytes  int64
	err    error
}

func (r *Rows) reset() {
	r.i, r.loaded, r.end, r.err, r.bytes = 0, false, false, nil, 0
}

// Next moves to the next row and reports whether there is one.
func (r *Rows) Next() bool {
	if r.end || r.err != nil {
		return false
	}
	if r.loaded && r.i+1 < r.blk.Len() {
		r.i++
		return true
	}
	u := r.u
	for {
		if r.loaded || u.state != uAtStart {
			// Move to the next block, if it is still in the group.
			if !u.it.Next() {
				u.state = uExhausted
				r.end = true
				r.err = u.it.Err()
				return false
			}
			if (u.byFile && u.it.NewGroup()) || (!u.byFile && u.it.NewUser()) {
				u.state = uAtNext
				r.end = true
				return false
			}
		}
		u.state = uInside
		if err := u.it.Decode(r.blk); err != nil {
			r.err = err
			return false
		}
		r.loaded = true
		r.bytes += r.blk.FieldBytes()
		r.file = u.it.key.File
		if r.blk.Len() > 0 {
			r.i = 0
			return true
		}
	}
}

// Fields returns the current row's fields, one per schema column. They
// alias the decoded block: valid until Next.
func (r *Rows) Fields() [][]byte {
	r.fields = r.blk.Row(r.i, r.fields)
	return r.fields
}

// TimeColumns returns the columns of the current row's block decoded
// from packed times (see Block.TimeColumns), valid until Next.
func (r *Rows) TimeColumns() []int { return r.blk.TimeColumns() }

// Seconds returns the Unix seconds of the current row's time in the k-th
// column of TimeColumns.
func (r *Rows) Seconds(k int) int64 { return r.blk.Seconds(r.i, k) }

// AmountColumns returns the columns of the current row's block decoded
// from packed amounts (see Block.AmountColumns), valid until Next.
func (r *Rows) AmountColumns() []int { return r.blk.AmountColumns() }

// Amount returns the current row's amount in the k-th column of
// AmountColumns, as its units and fraction digits.
func (r *Rows) Amount(k int) (units int64, scale int) { return r.blk.Amount(r.i, k) }

// Field returns field j of the current row, valid until Next.
func (r *Rows) Field(j int) []byte { return r.blk.Field(r.i, j) }

// Bytes returns the bytes of the fields of the group's blocks read so
// far, the columns not decoded included: what a reader counts as read.
func (r *Rows) Bytes() int64 { return r.bytes }

// Line returns the current row's line in its source file.
func (r *Rows) Line() int64 { return r.blk.Line(r.i) }

// File returns the file of the current row.
func (r *Rows) File() FileID { return r.file }

// Err returns the error that stopped the rows, if any.
func (r *Rows) Err() error { return r.err }

// Block returns the block of the current row and the row's index in it:
// the rows from there to the block's end are the group's next ones.
func (r *Rows) Block() (*Block, int) { return r.blk, r.i }

// SkipBlock moves past the rest of the current block: the next Next
// returns the first row of the group's next block, if any.
func (r *Rows) SkipBlock() { r.i = r.blk.Len() - 1 }
