// Package ordered makes the pieces of one output on several goroutines
// and hands them on in order: a features table merged piece by piece
// (output.WriteSorted), a partition run encoded shard range by shard
// range.
package ordered

import (
	"sync"
	"sync/atomic"
)

// Do calls produce(k) for every k in [0, n) on up to workers goroutines, and
// use(k, v) with each result on the calling goroutine, in the order of k,
// as each is ready. At most 2·workers results are made and not yet used,
// which bounds the memory they hold. After the first error, of produce or of
// use, no produce starts and no use is called; Do returns that error once
// every goroutine is done.
func Do[T any](workers, n int, produce func(k int) (T, error), use func(k int, v T) error) error {
	workers = max(1, min(workers, n))
	type piece struct {
		v    T
		err  error
		done chan struct{}
	}
	ps := make([]piece, n)
	for k := range ps {
		ps[k].done = make(chan struct{})
	}
	// A token is one result made and not yet used. Pieces are taken in
	// order by whoever holds a token, so the piece use waits for is
	// always being made or about to be: no deadlock.
	tokens := make(chan struct{}, 2*workers)
	for range cap(tokens) {
		tokens <- struct{}{}
	}
	var (
		next atomic.Int64
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				<-tokens
				k := int(next.Add(1) - 1)
				if k >= n {
					tokens <- struct{}{}
					return
				}
				pc := &ps[k]
				if !stop.Load() { // after an error, pieces are only marked done
					pc.v, pc.err = produce(k)
				}
				close(pc.done)
			}
		}()
	}
	var err error
	for k := range ps {
		pc := &ps[k]
		<-pc.done
		if err == nil {
			err = pc.err
		}
		if err == nil {
			err = use(k, pc.v)
		}
		if err != nil {
			stop.Store(true)
		}
		var zero T
		pc.v = zero
		tokens <- struct{}{}
	}
	wg.Wait()
	return err
}
