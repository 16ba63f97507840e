package wirecore_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

// captureHandler keeps every record it is handed.
type captureHandler struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message, "level": r.Level}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

// find waits for a record of event at origin matching ok.
func (h *captureHandler) find(t *testing.T, event, origin string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, r := range h.recs {
			if r["event"] == event && r["origin"] == origin && ok(r) {
				h.mu.Unlock()
				return r
			}
		}
		h.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Fatalf("no %s record for %s among %d: %v", event, origin, len(h.recs), h.recs)
	return nil
}

// The engine's events reach a *slog.Logger with their fields: the connection a request
// opened, a retry after a 503 and retries of a refused connect.
func TestSetLoggerGetsConnectionAndRetryRecords(t *testing.T) {
	h := &captureHandler{}
	if err := wirecore.SetLogger(slog.New(h)); err != nil {
		t.Fatal(err)
	}
	defer wirecore.SetLogger(nil)
	tr, err := wirecore.NewTransport(wirecore.Config{
		Retry: wirecore.RetryConfig{MaxAttempts: 3, BackoffBaseMs: 1, BackoffMaxMs: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	control(t, "POST", "/_control/script", `{"path":"/s/go-log","replies":[{"status":503},{"status":200}]}`)
	resp, err := c.Get(server.HTTP + "/s/go-log")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	if _, err := c.Get(refused + "/"); err == nil {
		t.Fatal("a refused connect succeeded")
	}

	opened := h.find(t, "connection_opened", server.HTTP, func(r map[string]any) bool { return true })
	if opened["protocol"] != "h1" || opened["level"] != slog.LevelDebug {
		t.Fatalf("opened: %v", opened)
	}
	h.find(t, "retry", server.HTTP, func(r map[string]any) bool {
		return r["attempt"] == int64(1) && r["status"] == int64(503) && r["error_code"] == "status"
	})
	for _, attempt := range []int64{1, 2} {
		h.find(t, "retry", refused, func(r map[string]any) bool {
			return r["attempt"] == attempt && r["error_code"] == "connect" && r["reason"] == "unsent"
		})
	}
	if err := wirecore.SetLogger(nil); err != nil {
		t.Fatal(err)
	}
}
