package e2etest

import (
	"context"
	"errors"
	"sync"

	"github.com/mce-engine/mce/store"
)

// EachUser reads a whole store back, one goroutine per span (every hash
// shard and the heavy users' range): it calls fn with each span's users in
// turn, on that span's goroutine, so fn keeps per-span state through
// newSpan, which is called once on each goroutine before its first user.
// done is called with that state, under a lock, when the span is read.
// It returns the first error of fn or of the reads.
func EachUser[S any](ctx context.Context, db *store.DB, newSpan func() S,
	fn func(s S, u *store.UserIter) error, done func(s S) error) error {
	spans := []store.Span{db.HeavySpan()}
	for s := 0; s < db.Shards(); s++ {
		spans = append(spans, db.ShardSpan(s))
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, sp := range spans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				st := newSpan()
				u, err := db.Users(ctx, sp, nil)
				if err != nil {
					return err
				}
				defer u.Close()
				for u.Next() {
					if err := fn(st, u); err != nil {
						return err
					}
				}
				if err := u.Err(); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				return done(st)
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
