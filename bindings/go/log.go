package wirecore

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/wirecore/wirecore/bindings/go/internal/capi"
)

var logState struct {
	sync.Mutex
	logger  *slog.Logger
	running bool
}

// SetLogger sends the engine's events (connections opened and closed, retries, breaker state
// changes, DNS refreshes, redirects, waits for a connection) to l as slog records with their
// fields as attributes (event, origin, attempt, error_code ...), for every Transport of the
// process: the engine's threads are shared by all of them. Records are handed over on a
// goroutine of this package, never on an engine thread; the engine keeps events at the most
// verbose level l is enabled for, and at most 4096 wait (more are dropped). Off by default;
// nil turns it off again.
func SetLogger(l *slog.Logger) error {
	logState.Lock()
	defer logState.Unlock()
	level := "off"
	if l != nil {
		level = mostVerbose(l)
	}
	if rc, e := capi.LogEnable(level); rc != capi.OK {
		return errorOf(rc, e)
	}
	logState.logger = l
	if l != nil && !logState.running {
		logState.running = true
		go deliverLogs()
	}
	return nil
}

const levelTrace = slog.LevelDebug - 4

func mostVerbose(l *slog.Logger) string {
	ctx := context.Background()
	for _, c := range []struct {
		level slog.Level
		name  string
	}{{levelTrace, "trace"}, {slog.LevelDebug, "debug"}, {slog.LevelInfo, "info"}, {slog.LevelWarn, "warn"}, {slog.LevelError, "error"}} {
		if l.Enabled(ctx, c.level) {
			return c.name
		}
	}
	return "off"
}

func slogLevel(name string) slog.Level {
	switch name {
	case "error":
		return slog.LevelError
	case "warn":
		return slog.LevelWarn
	case "info":
		return slog.LevelInfo
	case "debug":
		return slog.LevelDebug
	}
	return levelTrace
}

func deliverLogs() {
	for {
		got := capi.PollLogs(200)
		logState.Lock()
		l := logState.logger
		if l == nil && len(got) == 0 {
			logState.running = false
			logState.Unlock()
			return
		}
		logState.Unlock()
		if l == nil {
			continue
		}
		for _, r := range got {
			emit(l, r)
		}
	}
}

func emit(l *slog.Logger, r capi.LogRecord) {
	ctx := context.Background()
	level := slogLevel(r.Level)
	h := l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.UnixMilli(int64(r.TimeMs)), level, r.Message, 0)
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Fields[k]
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				v = i
			} else if f, err := n.Float64(); err == nil {
				v = f
			}
		}
		rec.AddAttrs(slog.Any(k, v))
	}
	rec.AddAttrs(slog.String("target", r.Target))
	_ = h.Handle(ctx, rec)
}
