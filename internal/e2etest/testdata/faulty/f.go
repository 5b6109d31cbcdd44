// Package faulty is a features file for the end-to-end tests and the
// fault suite: per user the invoice count and amount total (the first two
// columns of the built-in set), with faults injected on the users that
// --param names:
//
//	panic_user=U   the feature function panics on U
//	error_user=U   the feature function returns an error on U
//	slow_user=U    the feature function sleeps slow_ms (default 1000) on U,
//	               so that a test can act while that file is being reduced
//	hog_user=U     the feature function holds hog_mib MiB (default 256) of
//	               touched memory for hog_ms (default 3000) on U, so that
//	               the RAM monitor sees it; with hog_once=PATH only while
//	               PATH does not exist (it is created), so that the retry
//	               of the file succeeds
//	leak_kib=N     every user leaks N KiB of touched memory, kept until
//	               the process ends (for --recycle-rss)
package faulty

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// Features is the feature set; mce's builder compiles it into a features
// binary (e2etest.Main does, for the tests).
func Features() feature.Spec {
	return feature.Spec{
		Name: "faulty",
		Columns: []feature.Column{
			{Name: "invoice_count", Type: feature.TypeInt},
			{Name: "amount_total", Type: feature.TypeFloat},
		},
		Reduce: reduce,
	}
}

func reduce(u *feature.User, rows feature.Rows, out *feature.Record) error {
	p, user := u.Params, string(u.Key)
	switch user {
	case p.Get("panic_user", "\x00"):
		panic("faulty: panic on user " + user)
	case p.Get("error_user", "\x00"):
		return errors.New("faulty: error on user " + user)
	case p.Get("slow_user", "\x00"):
		time.Sleep(time.Duration(intParam(p, "slow_ms", 1000)) * time.Millisecond)
	case p.Get("hog_user", "\x00"):
		hog(p)
	}
	if kib := intParam(p, "leak_kib", 0); kib > 0 {
		b := make([]byte, kib<<10)
		for i := range b {
			b[i] = 1
		}
		leakMu.Lock()
		leaked = append(leaked, b)
		leakMu.Unlock()
	}
	amount := rows.Schema().Index(feature.ColAmount)
	var n, cents int64
	for rows.Next() {
		v, err := feature.ParseDecimal(rows.Row().Fields[amount], 2)
		if err == nil {
			cents += v
		}
		n++
	}
	out.SetIntAt(0, n)
	out.SetFloatAt(1, float64(cents)/100)
	return nil
}

var (
	leakMu sync.Mutex
	leaked [][]byte
)

// hog holds hog_mib MiB of touched memory for hog_ms.
func hog(p feature.Params) {
	if marker := p.Get("hog_once", ""); marker != "" {
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return // hogged once already
		}
		f.Close()
	}
	b := make([]byte, intParam(p, "hog_mib", 256)<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	time.Sleep(time.Duration(intParam(p, "hog_ms", 3000)) * time.Millisecond)
	runtime.KeepAlive(b)
}

func intParam(p feature.Params, key string, def int64) int64 {
	v, err := p.Int(key, def)
	if err != nil {
		return def
	}
	return v
}
