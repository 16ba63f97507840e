package wirecore_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	wirecore "github.com/wirecore/wirecore/bindings/go"
)

const (
	otelTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	otelParent = "00f067aa0ba902b7"
	otelTP     = "00-" + otelTrace + "-" + otelParent + "-01"
)

// sentTraceparent returns the traceparent /echo saw.
func sentTraceparent(t *testing.T, c *http.Client, o *wirecore.Options, header string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", server.raw["http"].(string)+"/echo", nil)
	if header != "" {
		req.Header.Set("traceparent", header)
	}
	if o != nil {
		req = req.WithContext(wirecore.WithOptions(req.Context(), *o))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	return echo.Headers["traceparent"]
}

func TestOtelTraceparentOptionIsSentUnchangedWhenOff(t *testing.T) {
	c := &http.Client{Transport: newTransport(t, wirecore.Config{})}
	if got := sentTraceparent(t, c, &wirecore.Options{Traceparent: otelTP}, ""); got != otelTP {
		t.Fatalf("sent %q", got)
	}
	_, _, err := do(t, c, "GET", server.raw["http"].(string)+"/echo", nil, &wirecore.Options{Traceparent: "00-abc"})
	if !errors.Is(err, wirecore.ErrInvalidRequest) || !strings.Contains(err.Error(), "traceparent must be a W3C traceparent") {
		t.Fatalf("bad traceparent: %v", err)
	}
}

// The option, or a traceparent header already on the request (as otelhttp.NewTransport sets
// it), is the parent of the span exported to the collector.
func TestOtelSpansAreExportedUnderTheCallersParent(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true,
		Endpoint: server.raw["http"].(string), ExportIntervalMs: 600_000}})
	c := &http.Client{Transport: tr}
	var sent []string
	sent = append(sent, sentTraceparent(t, c, &wirecore.Options{Traceparent: otelTP}, ""))
	sent = append(sent, sentTraceparent(t, c, nil, otelTP))
	for _, s := range sent {
		if !strings.HasPrefix(s, "00-"+otelTrace+"-") || strings.Contains(s, otelParent) {
			t.Fatalf("sent %q", s)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	spans := otelSpans(t)
	if len(spans) != 2 {
		t.Fatalf("want 2 spans, got %v", spans)
	}
	for i, s := range spans {
		if s["traceId"] != otelTrace || s["parentSpanId"] != otelParent || s["spanId"] != strings.Split(sent[i], "-")[2] {
			t.Fatalf("span %d: %v (sent %s)", i, s, sent[i])
		}
	}
}

// otelSpans returns every span the test server's OTLP receiver got.
func otelSpans(t *testing.T) []map[string]any {
	t.Helper()
	var exports []struct {
		Path string `json:"path"`
		Body struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []map[string]any `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"body"`
	}
	if err := json.Unmarshal(control(t, "GET", "/_control/otlp", ""), &exports); err != nil {
		t.Fatal(err)
	}
	var spans []map[string]any
	for _, e := range exports {
		if e.Path != "/v1/traces" {
			continue
		}
		for _, rs := range e.Body.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans = append(spans, ss.Spans...)
			}
		}
	}
	return spans
}

func otelStats(t *testing.T, tr *wirecore.Transport) wirecore.OtelStats {
	t.Helper()
	s, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Otel
}

func TestOtelFlushTelemetryExportsTheSpansOfEveryRequest(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true,
		Endpoint: server.raw["http"].(string), ExportIntervalMs: 600_000}})
	c := &http.Client{Transport: tr}
	for range 4 {
		if _, _, err := do(t, c, "GET", server.raw["http"].(string)+"/bytes/10", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s := otelStats(t, tr); s != (wirecore.OtelStats{}) {
		t.Fatalf("before the flush: %+v", s)
	}
	if err := tr.FlushTelemetry(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(otelSpans(t)); n != 4 {
		t.Fatalf("%d spans exported, want 4", n)
	}
	if s := otelStats(t, tr); s != (wirecore.OtelStats{Exported: 4}) {
		t.Fatalf("after the flush: %+v", s)
	}
	// A context already done returns its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.FlushTelemetry(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestOtelShutdownWithNoTimeLeftStillExportsTheLastSpans(t *testing.T) {
	control(t, "POST", "/_control/reset", "{}")
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true,
		Endpoint: server.raw["http"].(string), ExportIntervalMs: 600_000}})
	c := &http.Client{Transport: tr}
	for range 2 {
		if _, _, err := do(t, c, "GET", server.raw["http"].(string)+"/bytes/10", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(otelSpans(t)); n != 2 {
		t.Fatalf("%d spans exported at shutdown, want 2", n)
	}
	if err := tr.FlushTelemetry(context.Background()); err == nil {
		t.Fatal("FlushTelemetry after Close: no error")
	}
}

func TestOtelSpansACollectorDoesNotTakeAreCountedDropped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close() // nobody listens there any more: every export is refused
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true,
		Endpoint: endpoint, ExportIntervalMs: 600_000}})
	c := &http.Client{Transport: tr}
	for range 3 {
		if _, _, err := do(t, c, "GET", server.raw["http"].(string)+"/status/204", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.FlushTelemetry(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := otelStats(t, tr); s != (wirecore.OtelStats{Dropped: 3}) {
		t.Fatalf("stats: %+v", s)
	}
	if p := tr.Prometheus(); !strings.Contains(p, `wirecore_otel_spans_total{result="dropped"} 3`) {
		t.Fatalf("prometheus: %s", p)
	}
}

// spanSink collects the spans OnSpan hands over.
type spanSink struct {
	mu    sync.Mutex
	spans []wirecore.Span
}

func (s *spanSink) add(sp wirecore.Span) {
	s.mu.Lock()
	s.spans = append(s.spans, sp)
	s.mu.Unlock()
}

func (s *spanSink) all() []wirecore.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wirecore.Span(nil), s.spans...)
}

// OnSpan gets each request's span with the semantic-convention attributes, the caller's parent
// (Options.Traceparent, or a traceparent header as otelhttp sets it), error.type on a failure;
// Close returns once the queued spans were handed over.
func TestOtelOnSpanGetsEachRequestUnderTheCallersParent(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true}})
	var sink spanSink
	if err := tr.OnSpan(sink.add); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	sent := []string{
		sentTraceparent(t, c, &wirecore.Options{Traceparent: otelTP}, ""),
		sentTraceparent(t, c, nil, otelTP),
	}
	if _, _, err := do(t, c, "GET", "http://127.0.0.1:9/x", nil, nil); !errors.Is(err, wirecore.ErrConnect) {
		t.Fatalf("refused: %v", err)
	}
	if err := tr.FlushTelemetry(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := otelStats(t, tr); s != (wirecore.OtelStats{Exported: 3}) {
		t.Fatalf("stats %+v", s)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	spans := sink.all()
	if len(spans) != 3 {
		t.Fatalf("want 3 spans at close, got %+v", spans)
	}
	port, _ := strconv.ParseInt(server.raw["http"].(string)[strings.LastIndex(server.raw["http"].(string), ":")+1:], 10, 64)
	for i, s := range spans[:2] {
		if s.TraceID != otelTrace || s.ParentSpanID != otelParent || s.SpanID != strings.Split(sent[i], "-")[2] {
			t.Fatalf("span %d: %+v (sent %s)", i, s, sent[i])
		}
		a := s.Attributes
		if s.Name != "GET" || s.Kind != "client" || s.Status != "unset" || a["http.request.method"] != "GET" ||
			a["server.address"] != "127.0.0.1" || a["server.port"] != port || a["http.response.status_code"] != int64(200) ||
			a["error.type"] != nil || s.EndUnixNanos < s.StartUnixNanos || s.StartUnixNanos < 1_700_000_000_000_000_000 {
			t.Fatalf("span %d: %+v", i, s)
		}
	}
	if f := spans[2]; f.ParentSpanID != "" || f.Status != "error" || f.Attributes["error.type"] != "connect" {
		t.Fatalf("refused span: %+v", f)
	}
}

// A callback stuck on a span holds up no request: two more spans wait for it, the rest are
// dropped and counted; Close hands over the two once it is free.
func TestOtelAStuckOnSpanNeverHoldsUpRequests(t *testing.T) {
	tr := newTransport(t, wirecore.Config{Otel: wirecore.OtelConfig{Enabled: true, CallbackQueue: 2}})
	entered, release := make(chan struct{}), make(chan struct{})
	var sink spanSink
	var once sync.Once
	if err := tr.OnSpan(func(s wirecore.Span) {
		sink.add(s)
		once.Do(func() {
			close(entered)
			<-release
		})
	}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	url := server.raw["http"].(string) + "/status/204"
	get := func() {
		if code, _, err := do(t, c, "GET", url, nil, nil); err != nil || code != 204 {
			t.Fatalf("GET: %d %v", code, err)
		}
	}
	get()
	<-entered
	for range 5 {
		get()
	}
	if err := tr.FlushTelemetry(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := otelStats(t, tr); s != (wirecore.OtelStats{Exported: 3, Dropped: 3}) {
		t.Fatalf("stats %+v", s)
	}
	close(release)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.all()); n != 3 {
		t.Fatalf("%d spans handed over, want 3", n)
	}
}

func TestOtelOnSpanNeedsOtelEnabled(t *testing.T) {
	tr := newTransport(t, wirecore.Config{})
	err := tr.OnSpan(func(wirecore.Span) {})
	if !errors.Is(err, wirecore.ErrInvalidConfig) || !strings.Contains(err.Error(), "otel.enabled") {
		t.Fatalf("OnSpan with otel off: %v", err)
	}
}
