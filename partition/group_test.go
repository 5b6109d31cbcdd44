package partition

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestNewGrouper_spillLog: a Grouper whose runs will be s2-compressed
// (here: the input's size is not known) says so and why, as partition
// does; one with room to store them as they are says nothing.
func TestNewGrouper_spillLog(t *testing.T) {
	for _, tc := range []struct {
		inputBytes int64
		want       string
	}{
		{inputBytes: 0, want: "the input's size is not known"},
		{inputBytes: 1 << 20, want: ""},
	} {
		var log bytes.Buffer
		g, err := NewGrouper(GroupOptions{
			Dir: filepath.Join(t.TempDir(), "spill"), Schema: feature.InvoiceSchema, MemBytes: 16 << 20, CPUs: 1,
			InputBytes: tc.inputBytes, Logger: slog.New(slog.NewTextHandler(&log, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		got := log.String()
		if tc.want == "" {
			if strings.Contains(got, "s2-compressed") {
				t.Errorf("input of %d bytes: %s", tc.inputBytes, got)
			}
			continue
		}
		if !strings.Contains(got, "spilled s2-compressed") || !strings.Contains(got, tc.want) {
			t.Errorf("input of %d bytes: log %q, want the reason %q", tc.inputBytes, got, tc.want)
		}
	}
}
