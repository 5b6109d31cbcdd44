package engine

import (
	"context"
	"fmt"
	"log/slog"
)

// statusHandler hands each log record to the caller's handler (Options.Logger:
// stderr, or nothing while a live view has the terminal) and writes it to
// the run folder's status.log too, so that the folder keeps every record
// whatever the terminal showed: the clusters' own records (relogged with
// their pid), warnings such as a message that could not be sent, and, with
// a debug logger, the debug records. A record of the engine's own that
// status.log already tells in its words (inStatusLog) is not written
// twice. In status.log a record reads as the text handler writes it, after
// the line's time stamp:
//
//	2025-01-31T10:00:00.000Z level=WARN msg="cluster stderr" cluster=1 pid=4242 line="..."
type statusHandler struct {
	inner slog.Handler
	file  slog.Handler
	// cluster is true for the records of a cluster process (a logger
	// with a pid attribute): they are written whatever their message.
	cluster bool
}

func newStatusHandler(inner slog.Handler, logs *runLogs) *statusHandler {
	file := slog.NewTextHandler(statusWriter{logs}, &slog.HandlerOptions{
		Level: slog.LevelDebug, // Enabled below decides
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // statusWriter stamps the line as status.log does
			}
			return a
		},
	})
	return &statusHandler{inner: inner, file: file}
}

// Enabled reports whether either side takes records of level l: status.log
// takes Info and above, and below that what the caller's handler takes.
func (h *statusHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.inner.Enabled(ctx, l)
}

func (h *statusHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	inner := h.inner.Enabled(ctx, r.Level)
	if inner {
		err = h.inner.Handle(ctx, r.Clone())
	}
	if (r.Level >= slog.LevelInfo || inner) && (h.cluster || !inStatusLog(r.Message)) {
		h.file.Handle(ctx, r) // status.log's own write errors are not the caller's
	}
	return err
}

func (h *statusHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := h.cluster
	for _, a := range as {
		c = c || a.Key == "pid"
	}
	return &statusHandler{inner: h.inner.WithAttrs(as), file: h.file.WithAttrs(as), cluster: c}
}

func (h *statusHandler) WithGroup(name string) slog.Handler {
	return &statusHandler{inner: h.inner.WithGroup(name), file: h.file.WithGroup(name), cluster: h.cluster}
}

// inStatusLog reports whether the engine's record msg has a line of
// status.log of its own (run.go, scheduler.go, cluster.go, monitor.go
// write both).
func inStatusLog(msg string) bool {
	switch msg {
	case "run started", "run finished", "run interrupted", "run stopped",
		"file started", "file done", "file failed", "bad row",
		"file lost with its cluster; retrying it alone", "cluster killed over the RAM limit":
		return true
	}
	return false
}

// statusWriter writes each record, one line, to status.log after a time
// stamp.
type statusWriter struct{ l *runLogs }

func (w statusWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if _, err := fmt.Fprintf(w.l.status, "%s %s", stamp(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
