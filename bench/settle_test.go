package bench

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSettle: the bench waits for the load average to fall under half
// the cores, and no longer than its limit; it does not wait at all with
// no limit, on a quiet machine or when the load is not known, and stops
// with its context.
func TestSettle(t *testing.T) {
	defer func(p time.Duration) { settlePoll = p }(settlePoll)
	settlePoll = time.Millisecond
	for _, tc := range []struct {
		name   string
		max    time.Duration
		loads  []string // read in turn; the last one again
		reads  int      // how many times the load is read
		logged string
	}{
		{name: "no limit", max: 0, loads: []string{"1.90"}, reads: 1},
		{name: "quiet", max: time.Minute, loads: []string{"0.40"}, reads: 1},
		{name: "unknown", max: time.Minute, loads: []string{""}, reads: 1},
		{name: "settles", max: time.Minute, loads: []string{"1.74", "1.30", "1.02", "0.95"}, reads: 4, logged: "load average settled"},
		{name: "stays busy", max: 20 * time.Millisecond, loads: []string{"1.80"}, logged: "did not settle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			load := func() string {
				l := tc.loads[min(n, len(tc.loads)-1)]
				n++
				return l
			}
			var log bytes.Buffer
			if err := settle(context.Background(), tc.max, 2, load, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
				t.Fatal(err)
			}
			if tc.reads > 0 && n != tc.reads {
				t.Errorf("load read %d times, want %d", n, tc.reads)
			}
			if tc.logged != "" && !strings.Contains(log.String(), tc.logged) {
				t.Errorf("log lacks %q:\n%s", tc.logged, log.String())
			}
			if tc.logged == "" && log.Len() > 0 {
				t.Errorf("logged without waiting:\n%s", log.String())
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := settle(ctx, time.Minute, 2, func() string { return "3.0" }, slog.New(slog.DiscardHandler)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
