package store

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// ShardInfo describes one shard.
type ShardInfo struct {
	Shard int
	// Bytes is pebble's estimate of the shard's size on disk, normal and
	// heavy ranges together.
	Bytes uint64
	// Users and Blocks are counted by a key scan (Info with count).
	Users  int64
	Blocks int64
}

// Info is what `mce store info` shows.
type Info struct {
	Manifest *Manifest
	// Users is the number of distinct users (0 unless counted).
	Users int64
	// RawBytes is the uncompressed size of the live files; StoredBytes the
	// size of their block values; DiskBytes the database on disk.
	RawBytes    int64
	StoredBytes int64
	DiskBytes   uint64
	Shards      []ShardInfo
	// Tables counts the database's sstables, L0Tables those in level 0:
	// each incremental partition run adds a layer of tables to L0 that
	// readers merge, until a compaction (see DB.Compact) folds them down.
	L0Tables int64
	Tables   int64
}

// Info describes the store. With count it also scans every key (not the
// values) to count users and blocks per shard.
func (db *DB) Info(ctx context.Context, count bool) (*Info, error) {
	inf := &Info{Manifest: db.Manifest()}
	for _, f := range inf.Manifest.Files {
		if f.State == FileLive {
			inf.RawBytes += f.RawBytes
			inf.StoredBytes += f.StoredBytes
		}
	}
	met := db.pdb.Metrics()
	inf.DiskBytes = met.DiskSpaceUsage()
	inf.L0Tables = met.Levels[0].TablesCount
	for _, l := range met.Levels {
		inf.Tables += l.TablesCount
	}
	sizes, err := db.ShardSizes(ctx, true)
	if err != nil {
		return nil, err
	}
	inf.Shards = make([]ShardInfo, len(sizes))
	for s, b := range sizes {
		inf.Shards[s] = ShardInfo{Shard: s, Bytes: b}
	}
	if !count {
		return inf, nil
	}
	err = db.forShards(ctx, 0, func(s int) error {
		for _, sp := range []Span{shardSpan(s), heavyShardSpan(s)} {
			it, err := db.NewIter(ctx, sp, nil)
			if err != nil {
				return err
			}
			for it.Next() {
				inf.Shards[s].Blocks++
				if it.NewUser() {
					inf.Shards[s].Users++
				}
			}
			if err := it.Close(); err != nil {
				return fmt.Errorf("shard %d: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range inf.Shards {
		inf.Users += s.Users
	}
	return inf, nil
}

// ShardSizes returns pebble's estimate of each shard's bytes on disk, by
// shard number, from the table index (no data is read): what a reducer
// needs to hand out the biggest shards first. With heavy, the shard's
// heavy users count too. It stops at ctx's end (planning a reduce that
// was interrupted).
func (db *DB) ShardSizes(ctx context.Context, heavy bool) ([]uint64, error) {
	out := make([]uint64, db.Shards())
	// On every CPU: the planning of `mce reduce` waits for it (256 shards,
	// 5-12 ms on one CPU for the bench's store).
	err := db.forShards(ctx, 0, func(s int) error {
		a, err := db.pdb.EstimateDiskUsage(shardSpan(s).Lower, shardSpan(s).Upper)
		if err != nil {
			return fmt.Errorf("estimate shard %d: %w", s, err)
		}
		if heavy {
			b, err := db.pdb.EstimateDiskUsage(heavyShardSpan(s).Lower, heavyShardSpan(s).Upper)
			if err != nil {
				return fmt.Errorf("estimate shard %d: %w", s, err)
			}
			a += b
		}
		out[s] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forShards runs fn for every shard on up to workers goroutines (default
// GOMAXPROCS) and returns the first error.
func (db *DB) forShards(ctx context.Context, workers int, fn func(shard int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := db.Shards()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				if err := fn(s); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for s := 0; s < n && ctx.Err() == nil; s++ {
		select {
		case next <- s:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// FileCheck compares a file's record with what the store holds.
type FileCheck struct {
	ID         FileID
	Name       string
	WantRows   int64
	GotRows    int64
	WantBlocks int64
	GotBlocks  int64
	WantUsers  int64
	GotUsers   int64
}

// OK reports whether the counts agree.
func (c FileCheck) OK() bool {
	return c.WantRows == c.GotRows && c.WantBlocks == c.GotBlocks && c.WantUsers == c.GotUsers
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Files  []FileCheck
	Rows   int64
	Blocks int64
	// Stale counts blocks that readers skip and the next partition run
	// removes: rows of files being deleted, normal-range copies of users
	// that moved to the heavy range.
	Stale int64
	// Problems lists every disagreement; empty means the store is sound.
	Problems []string
}

// VerifyOptions says how deep Verify looks.
type VerifyOptions struct {
	// Decode decompresses and decodes every block (slower) instead of
	// trusting the row count in each block's header.
	Decode  bool
	Workers int
}

type verifyAcc struct {
	rows, blocks, users map[FileID]int64
	heavy               map[string]map[FileID][2]int64
	stale               int64
	problems            []string
}

// Verify recounts every live file's rows, blocks and users from the data
// and checks them against the records, checks that keys are well formed,
// in the right shard, numbered without gaps, and that every block belongs
// to a recorded file. It reads every key, and with Decode every value.
func (db *DB) Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	files := db.allFiles()
	known := map[FileID]FileState{}
	for _, f := range files {
		known[f.ID] = f.State
	}
	db.mu.RLock()
	heavy := make(map[string]bool, len(db.heavy))
	for u := range db.heavy {
		heavy[u] = true
	}
	shards := db.cfg.Shards
	db.mu.RUnlock()

	var mu sync.Mutex
	total := verifyAcc{rows: map[FileID]int64{}, blocks: map[FileID]int64{}, users: map[FileID]int64{}, heavy: map[string]map[FileID][2]int64{}}
	err := db.forShards(ctx, o.Workers, func(s int) error {
		acc := verifyAcc{rows: map[FileID]int64{}, blocks: map[FileID]int64{}, users: map[FileID]int64{}, heavy: map[string]map[FileID][2]int64{}}
		for _, sp := range []Span{shardSpan(s), heavyShardSpan(s)} {
			if err := db.verifySpan(ctx, sp, s, shards, known, heavy, o.Decode, &acc); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id, n := range acc.rows {
			total.rows[id] += n
		}
		for id, n := range acc.blocks {
			total.blocks[id] += n
		}
		for id, n := range acc.users {
			total.users[id] += n
		}
		for u, m := range acc.heavy {
			total.heavy[u] = m
		}
		total.stale += acc.stale
		total.problems = append(total.problems, acc.problems...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Nothing may sit outside the shard ranges but meta keys.
	for _, sp := range []Span{{Lower: []byte{kindHeavy + 1}, Upper: []byte{0xFF, 0xFF, 0xFF}}} {
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
		if err != nil {
			return nil, db.readErr("scan past the data ranges", err)
		}
		if it.First() {
			total.problems = append(total.problems, fmt.Sprintf("unknown key %x outside the data ranges", it.Key()))
		}
		if err := it.Close(); err != nil {
			return nil, db.readErr("scan past the data ranges", err)
		}
	}
	rep := &VerifyReport{Stale: total.stale, Problems: total.problems}
	for _, f := range files {
		if f.State != FileLive {
			continue
		}
		c := FileCheck{ID: f.ID, Name: f.Name, WantRows: f.Rows, GotRows: total.rows[f.ID],
			WantBlocks: f.Blocks, GotBlocks: total.blocks[f.ID], WantUsers: f.Users, GotUsers: total.users[f.ID]}
		rep.Files = append(rep.Files, c)
		rep.Rows += c.GotRows
		rep.Blocks += c.GotBlocks
		if !c.OK() {
			rep.Problems = append(rep.Problems, fmt.Sprintf("file %s (id %d): record says %d rows, %d blocks, %d users; store holds %d rows, %d blocks, %d users",
				f.Name, f.ID, c.WantRows, c.WantBlocks, c.WantUsers, c.GotRows, c.GotBlocks, c.GotUsers))
		}
	}
	for _, h := range db.HeavyUsers() {
		got := total.heavy[h.User]
		for _, hf := range h.Files {
			g := got[hf.File]
			if g[0] != hf.Rows || g[1] != hf.Blocks {
				rep.Problems = append(rep.Problems, fmt.Sprintf("heavy user %q file %d: record says %d rows in %d blocks; store holds %d rows in %d blocks",
					h.User, hf.File, hf.Rows, hf.Blocks, g[0], g[1]))
			}
		}
		if len(got) > len(h.Files) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("heavy user %q has blocks in %d files, records list %d", h.User, len(got), len(h.Files)))
		}
	}
	sort.Strings(rep.Problems)
	return rep, nil
}

func (db *DB) verifySpan(ctx context.Context, sp Span, shard, shards int, known map[FileID]FileState, heavy map[string]bool, decode bool, acc *verifyAcc) error {
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
	if err != nil {
		return db.readErr(fmt.Sprintf("scan shard %d", shard), err)
	}
	defer it.Close()
	var (
		blk      Block
		prev     Key
		prevUser []byte
		havePrev bool
		n        int
		storeFmt = db.Config().Format
	)
	problem := func(format string, args ...any) {
		if len(acc.problems) < 100 {
			acc.problems = append(acc.problems, fmt.Sprintf(format, args...))
		}
	}
	for it.First(); it.Valid(); it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k, err := DecodeKey(it.Key())
		if err != nil {
			problem("%v", err)
			continue
		}
		if int(hashShard(k.User, shards)) != shard || k.Shard != shard {
			problem("user %q is in shard %d, its hash says %d", k.User, k.Shard, hashShard(k.User, shards))
		}
		st, ok := known[k.File]
		if !ok {
			problem("user %q has block %d of file %d, which no record names", k.User, k.Seq, k.File)
			continue
		}
		if st != FileLive || (!k.Heavy && heavy[string(k.User)]) {
			acc.stale++
			continue
		}
		sameUser := havePrev && bytes.Equal(k.User, prevUser)
		sameGroup := sameUser && k.File == prev.File
		switch {
		case sameGroup && k.Seq != prev.Seq+1:
			problem("user %q file %d: block %d follows block %d", k.User, k.File, k.Seq, prev.Seq)
		case !sameGroup && k.Seq != 0:
			problem("user %q file %d: first block is %d", k.User, k.File, k.Seq)
		}
		if k.Heavy && !heavy[string(k.User)] {
			problem("user %q has blocks in the heavy range but no heavy record", k.User)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return db.readErr(fmt.Sprintf("read user %q file %d block %d", k.User, k.File, k.Seq), err)
		}
		h, err := ParseValueHeader(v)
		if err != nil {
			problem("user %q file %d block %d: %v", k.User, k.File, k.Seq, err)
			continue
		}
		if h.Layout > layoutOf(storeFmt) {
			problem("user %q file %d block %d: block layout %d in a format %d store (the mce that made the store cannot read it)",
				k.User, k.File, k.Seq, h.Layout, storeFmt)
		}
		rows := int64(h.Rows)
		if decode {
			if err := blk.DecodeValue(v, db.comp); err != nil {
				problem("user %q file %d block %d: %v", k.User, k.File, k.Seq, err)
				continue
			}
			for i := 1; i < blk.Len(); i++ {
				if blk.Line(i) <= blk.Line(i-1) {
					problem("user %q file %d block %d: line %d after line %d", k.User, k.File, k.Seq, blk.Line(i), blk.Line(i-1))
					break
				}
			}
		}
		acc.rows[k.File] += rows
		acc.blocks[k.File]++
		if !sameGroup {
			acc.users[k.File]++
		}
		if k.Heavy {
			m := acc.heavy[string(k.User)]
			if m == nil {
				m = map[FileID][2]int64{}
				acc.heavy[string(k.User)] = m
			}
			c := m[k.File]
			c[0] += rows
			c[1]++
			m[k.File] = c
		}
		prev = k
		prevUser = append(prevUser[:0], k.User...)
		prev.User = prevUser
		havePrev = true
	}
	if err := it.Error(); err != nil {
		return db.readErr(fmt.Sprintf("scan shard %d", shard), err)
	}
	return nil
}
