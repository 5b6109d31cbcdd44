package store

import (
	"bytes"
	"testing"
)

func TestKey_RoundTrip(t *testing.T) {
	f := func(k Key) {
		t.Helper()
		enc := AppendKey(nil, k)
		got, err := DecodeKey(enc)
		if err != nil {
			t.Fatalf("DecodeKey(%x): %v", enc, err)
		}
		if got.Heavy != k.Heavy || got.Shard != k.Shard || !bytes.Equal(got.User, k.User) || got.File != k.File || got.Seq != k.Seq {
			t.Errorf("round trip of %+v gave %+v", k, got)
		}
	}
	f(Key{Shard: 0, User: []byte("GAMS850101AB3"), File: 1, Seq: 0})
	f(Key{Heavy: true, Shard: 65535, User: []byte("BANCO"), File: 1<<32 - 1, Seq: 1<<32 - 1})
	f(Key{Shard: 7, User: []byte{}, File: 3, Seq: 9})
	f(Key{Shard: 7, User: []byte{0, 0, 1, 0, 0xFF}, File: 3, Seq: 9})
	f(Key{Shard: 7, User: []byte("ÑAÑ\x00"), File: 3, Seq: 9})
}

// TestKey_Order checks that key order is (kind, shard, user, file, seq)
// and that a user's span holds exactly that user's keys.
func TestKey_Order(t *testing.T) {
	users := [][]byte{{}, {0}, {0, 0}, {0, 1}, {1}, []byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("ab"), {0xFF}, {0xFF, 0}}
	var keys [][]byte
	for _, u := range users {
		for _, f := range []FileID{1, 2, 256} {
			for _, s := range []uint32{0, 1, 300} {
				keys = append(keys, AppendKey(nil, Key{Shard: 3, User: u, File: f, Seq: s}))
			}
		}
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Fatalf("key %d %x not below key %d %x", i-1, keys[i-1], i, keys[i])
		}
	}
	for i, u := range users {
		sp := userSpan(false, 3, u)
		for j, k := range keys {
			in := bytes.Compare(k, sp.Lower) >= 0 && bytes.Compare(k, sp.Upper) < 0
			if in != (j/9 == i) {
				t.Errorf("user %x span %v: key %x in=%v", u, sp, k, in)
			}
		}
	}
	if s := shardSpan(3); bytes.Compare(keys[0], s.Lower) < 0 || bytes.Compare(keys[len(keys)-1], s.Upper) >= 0 {
		t.Errorf("shard span %v does not hold its keys", s)
	}
}

func TestDecodeKey_Bad(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {0, 'f', 0, 0, 0, 1}, {1, 0, 0, 'a'}, {1, 0, 0, 'a', 0, 1, 0}, {1, 0, 0, 'a', 0, 7, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := DecodeKey(b); err == nil {
			t.Errorf("DecodeKey(%x) accepted", b)
		}
	}
}

func FuzzKey(f *testing.F) {
	f.Add(true, uint16(5), []byte("user"), uint32(1), uint32(2))
	f.Add(false, uint16(0), []byte{0, 0xFF, 0, 1}, uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, heavy bool, shard uint16, user []byte, file, seq uint32) {
		k := Key{Heavy: heavy, Shard: int(shard), User: user, File: FileID(file), Seq: seq}
		enc := AppendKey(nil, k)
		got, err := DecodeKey(enc)
		if err != nil {
			t.Fatal(err)
		}
		if got.Heavy != k.Heavy || got.Shard != k.Shard || !bytes.Equal(got.User, k.User) || got.File != k.File || got.Seq != k.Seq {
			t.Fatalf("round trip of %+v gave %+v", k, got)
		}
		sp := userSpan(heavy, int(shard), user)
		if bytes.Compare(enc, sp.Lower) < 0 || bytes.Compare(enc, sp.Upper) >= 0 {
			t.Fatalf("key %x outside its user span %v", enc, sp)
		}
		// Arbitrary bytes must decode or fail, never panic.
		_, _ = DecodeKey(user)
	})
}
