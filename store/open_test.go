package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// onLock calls fn at the first operation of an Open after its first
// attempt to take the store's lock (after=true), or at that attempt
// (after=false), and fails nothing.
func onLock(after bool, fn func()) errorfs.Injector {
	var once sync.Once
	locked := false
	var mu sync.Mutex
	return errorfs.InjectorFunc(func(op errorfs.Op) error {
		mu.Lock()
		fire := (op.Kind == errorfs.OpLock && !after) || (locked && after)
		locked = locked || op.Kind == errorfs.OpLock
		mu.Unlock()
		if fire {
			once.Do(fn)
		}
		return nil
	})
}

// TestOpen_SecondWriterWaits: two partitions start on a new store at
// once. The second looks at the directory while the first holds the lock
// but has not made the database yet, so both take the store for new; the
// second waits for the lock. When it gets it, it must see the store the
// first made (and the file it ingested), not make a new one over it.
func TestOpen_SecondWriterWaits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	aLocked, bLooked, goA := make(chan struct{}), make(chan struct{}), make(chan struct{})
	type opened struct {
		db  *DB
		err error
	}
	aDone, bDone := make(chan opened, 1), make(chan opened, 1)
	go func() {
		cfg := testCfg
		fs := errorfs.Wrap(vfs.Default, onLock(true, func() { close(aLocked); <-goA }))
		db, err := Open(dir, quietOpts(Options{Create: &cfg, FS: fs}))
		aDone <- opened{db, err}
	}()
	<-aLocked
	go func() {
		cfg := testCfg
		fs := errorfs.Wrap(vfs.Default, onLock(false, func() { close(bLooked) }))
		db, err := Open(dir, quietOpts(Options{Create: &cfg, FS: fs}))
		bDone <- opened{db, err}
	}()
	<-bLooked
	// The second one is waiting for the lock; one that does not wait says
	// why at once.
	cfg := testCfg
	if _, err := Open(dir, quietOpts(Options{Create: &cfg, NoLockWait: true})); err == nil || !strings.Contains(err.Error(), "in use by another mce process") {
		t.Errorf("Open with NoLockWait while the store is held: %v", err)
	}
	close(goA)
	a := <-aDone
	if a.err != nil {
		t.Fatalf("first Open: %v", a.err)
	}
	loadFile(t, a.db, 1, "jan.csv", map[string][]string{"alice": {"1.00", "2.00"}}, nil)
	a.db.Close()
	var b opened
	select {
	case b = <-bDone:
	case <-time.After(2 * lockWait):
		t.Fatal("the second Open did not return")
	}
	if b.err != nil {
		t.Fatalf("second Open: %v", b.err)
	}
	defer b.db.Close()
	if fs := b.db.Files(); len(fs) != 1 || fs[0].Name != "jan.csv" || fs[0].Rows != 2 {
		t.Errorf("the second Open sees %+v; want the first one's jan.csv with 2 rows", fs)
	}
	if got := readUser(t, b.db, "alice", nil); len(got) != 2 {
		t.Errorf("alice: %v", got)
	}
}

// TestOpen_ListError: when db/ cannot be listed, Open fails; it must not
// take the store for new (and clear its database).
func TestOpen_ListError(t *testing.T) {
	db, dir := createStore(t)
	loadFile(t, db, 1, "jan.csv", map[string][]string{"alice": {"1.00"}}, nil)
	db.Close()
	if err := vfs.Default.Remove(filepath.Join(dir, manifestName)); err != nil {
		t.Fatal(err)
	}
	fail := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpList && filepath.Base(op.Path) == "db" {
			return errors.New("injected: cannot list")
		}
		return nil
	})
	cfg := testCfg
	if db, err := Open(dir, quietOpts(Options{Create: &cfg, FS: errorfs.Wrap(vfs.Default, fail)})); err == nil {
		db.Close()
		t.Fatal("Open succeeded")
	}
	db, err := Open(dir, quietOpts(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if len(db.Files()) != 1 {
		t.Errorf("%d files after the failed Open, want 1", len(db.Files()))
	}
}

// readManifestFile reads MANIFEST.json afresh, as the tests look at it.
func readManifestFile(fs vfs.FS, dir string) (*Manifest, error) {
	m, _, err := readManifestReusing(fs, dir, nil, nil)
	return m, err
}

// TestReadManifestReusing: Open reads MANIFEST.json before and after it
// takes the lock; the second read parses only what changed in between.
func TestReadManifestReusing(t *testing.T) {
	dir := t.TempDir()
	write := func(rows int) {
		b := fmt.Sprintf(`{"format": %d, "shards": 4, "rows": %d}`, FormatVersion, rows)
		if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(10)
	m1, b1, err := readManifestReusing(vfs.Default, dir, nil, nil)
	if err != nil || m1.Rows != 10 {
		t.Fatalf("first read: %+v, %v", m1, err)
	}
	m2, b2, err := readManifestReusing(vfs.Default, dir, m1, b1)
	if err != nil || m2 != m1 || !bytes.Equal(b2, b1) {
		t.Fatalf("the same bytes: got %p (%v), want the first parse %p", m2, err, m1)
	}
	write(11) // another process wrote it in between
	m3, _, err := readManifestReusing(vfs.Default, dir, m1, b1)
	if err != nil || m3 == m1 || m3.Rows != 11 {
		t.Fatalf("changed bytes: got %+v (%v), want a new parse with 11 rows", m3, err)
	}
}
